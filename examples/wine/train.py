"""Trains the wine-quality random forest and saves results/classifier.pkl.

The seed's model: RandomForestClassifier(n_estimators=100, max_features=5, min_samples_split=5)
on the 11 physico-chemical features, with the quality score as the label.
"""

import time
from pathlib import Path

import joblib
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import cross_val_score

HERE = Path(__file__).resolve().parent
DATA = HERE / "winequality-red.csv"
MODEL = HERE / "results" / "classifier.pkl"


def main() -> None:
    if not DATA.exists():
        from make_data import write

        write(DATA)
    train = pd.read_csv(DATA, sep=";")
    features = train.columns[:11]
    clf = RandomForestClassifier(n_estimators=100, max_features=5, min_samples_split=5,
                                 random_state=0, n_jobs=1)
    start = time.perf_counter()
    clf.fit(train[features].to_numpy(), train.quality)
    print(f"training time: {time.perf_counter() - start:.2f} s")
    scores = cross_val_score(clf, train[features].to_numpy(), train.quality, cv=5)
    print(f"cross-validation accuracy: {scores.mean():.3f} (folds: {scores.round(3)})")
    MODEL.parent.mkdir(exist_ok=True)
    joblib.dump(clf, MODEL, compress=3)
    print(f"saved {MODEL} ({MODEL.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
