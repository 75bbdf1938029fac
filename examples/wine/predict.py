"""The wine-quality endpoint: the model is loaded once, when modelgate runs this script.

``predict(features)`` takes one wine (11 numbers, in the data set's column order) and returns
its predicted quality as a plain int; given a list of wines it returns a list of ints.
"""

from pathlib import Path

import joblib
import numpy as np

clf = joblib.load(Path(__file__).resolve().parent / "results" / "classifier.pkl")


def predict(features):
    rows = np.asarray(features, dtype=float)
    if rows.ndim == 1:
        return int(clf.predict(rows.reshape(1, -1))[0])
    return [int(q) for q in clf.predict(rows)]
