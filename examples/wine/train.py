"""Trains the wine-quality random forest and saves results/classifier.pkl.

The seed's model: RandomForestClassifier(n_estimators=100, max_features=5, min_samples_split=5)
on the 11 physico-chemical features, with the quality score (3-8) as the label; random_state
is fixed so that retraining gives the same forest. Paths are relative to this file, not to the
working directory: ``python examples/wine/train.py`` works from anywhere. If
winequality-red.csv is missing, make_data.py writes it first (it is synthetic: see there).
"""

import importlib.util
import time
from pathlib import Path

import joblib
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import cross_val_score

HERE = Path(__file__).resolve().parent
DATA = HERE / "winequality-red.csv"
MODEL = HERE / "results" / "classifier.pkl"


def ensure_data() -> None:
    if DATA.exists():
        return
    spec = importlib.util.spec_from_file_location("wine_make_data", HERE / "make_data.py")
    assert spec is not None and spec.loader is not None
    make_data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_data)
    print(f"generated {make_data.write(DATA)}")


def main() -> None:
    ensure_data()
    train = pd.read_csv(DATA, sep=";")
    features = train.columns[:11]
    # Fitted on a plain array, as predict.py feeds it one (no feature-name bookkeeping per call).
    x, y = train[features].to_numpy(dtype=float), train["quality"]
    clf = RandomForestClassifier(n_estimators=100, max_features=5, min_samples_split=5,
                                 random_state=0)

    start = time.perf_counter()
    clf.fit(x, y)
    print(f"training time: {time.perf_counter() - start:.2f} s")

    scores = cross_val_score(clf, x, y, cv=5)
    print(f"cross-validation scores (5 folds): {' '.join(f'{s:.3f}' for s in scores)}"
          f"  mean {scores.mean():.3f}")

    MODEL.parent.mkdir(exist_ok=True)
    joblib.dump(clf, MODEL, compress=3)
    print(f"saved {MODEL} ({MODEL.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
