"""Writes winequality-red.csv: a SYNTHETIC stand-in for the UCI red-wine quality data set.

Why synthetic: the real file (Cortez et al., UCI Machine Learning Repository) cannot be
downloaded where modelgate is built and tested, and the example only needs data of the same
shape. This script generates it deterministically (fixed seed, numpy only, no network):

- the same 12 columns in the same order, semicolon-separated, with a quoted header;
- 1,599 wines with ranges, means and skew close to the real ones (alcohol 8.4-14.9, mean
  ~10.4; volatile acidity ~0.12-1.3; pH 2.74-4.01; density 0.990-1.004; ...);
- an integer quality 3-8, mostly 5 and 6, that really depends on the features (more alcohol
  and sulphates and less volatile acidity make better wine, plus noise), so that a classifier
  has something to learn.

Do not draw conclusions about wine from it. Running it again rewrites a byte-identical file
(the file is replaced atomically, so a reader never sees half of it).
"""

import os
from pathlib import Path

import numpy as np

COLUMNS = ["fixed acidity", "volatile acidity", "citric acid", "residual sugar", "chlorides",
           "free sulfur dioxide", "total sulfur dioxide", "density", "pH", "sulphates",
           "alcohol", "quality"]
DECIMALS = [1, 3, 2, 1, 3, 0, 0, 5, 2, 2, 1, 0]  # as printed in the real file
ROWS = 1599
SEED = 20171
HERE = Path(__file__).resolve().parent
CSV = HERE / "winequality-red.csv"


def generate(seed: int = SEED, rows: int = ROWS) -> np.ndarray:
    """The data set as a (rows, 12) float array, in COLUMNS order."""
    rng = np.random.default_rng(seed)

    def right_tail(values: np.ndarray, share: float, scale: float) -> np.ndarray:
        # A few wines far out on the right, as the real sugar, chlorides and sulphates have.
        outliers = rng.random(rows) < share
        return values * np.where(outliers, 1 + rng.exponential(scale, rows), 1.0)

    fixed = np.clip(rng.lognormal(2.095, 0.2, rows), 4.6, 15.9)
    volatile = np.clip(rng.gamma(9.0, 0.0587, rows), 0.12, 1.58)
    citric = np.clip(0.075 * (fixed - 8.3) + rng.normal(0.27, 0.17, rows), 0.0, 1.0)
    sugar = np.clip(right_tail(rng.lognormal(0.8, 0.25, rows), 0.06, 1.0), 0.9, 15.5)
    chlorides = np.clip(right_tail(rng.lognormal(-2.53, 0.2, rows), 0.05, 0.9), 0.012, 0.611)
    free_so2 = np.clip(rng.gamma(2.8, 5.6, rows), 1.0, 72.0).round()
    total_so2 = np.clip(free_so2 * rng.uniform(1.2, 3.8, rows) + rng.normal(8, 8, rows),
                        6.0, 289.0).round()
    alcohol = np.clip(rng.gamma(6.0, 0.43, rows) + 7.85, 8.4, 14.9)
    # Denser with more acid and sugar, lighter with more alcohol; more acid, lower pH.
    density = np.clip(0.9967 + 0.0007 * (fixed - 8.3) - 0.0009 * (alcohol - 10.4)
                      + 0.0004 * (sugar - 2.5) + rng.normal(0, 0.0009, rows), 0.990, 1.004)
    ph = np.clip(3.31 - 0.055 * (fixed - 8.3) + 0.1 * rng.standard_t(6, rows), 2.74, 4.01)
    sulphates = np.clip(right_tail(rng.lognormal(-0.465, 0.17, rows), 0.05, 0.5), 0.33, 2.0)

    # The label: a latent score (alcohol up, volatile acidity down, sulphates up, a little
    # citric acid and sulphur dioxide) plus heavy-tailed noise, rounded to 3..8.
    score = (5.56 + 0.5 * (alcohol - 10.4) - 1.3 * (volatile - 0.53)
             + 1.0 * (sulphates - 0.66) + 0.2 * (citric - 0.27)
             - 0.003 * (total_so2 - 46) + 0.32 * rng.standard_t(5, rows))
    quality = np.clip(np.rint(score), 3, 8)
    return np.column_stack([fixed, volatile, citric, sugar, chlorides, free_so2, total_so2,
                            density, ph, sulphates, alcohol, quality])


def to_csv_text(data: np.ndarray) -> str:
    lines = [";".join(f'"{name}"' for name in COLUMNS)]
    for row in data:
        lines.append(";".join(f"{value:.{digits}f}" if digits else str(int(value))
                              for value, digits in zip(row, DECIMALS)))
    return "\n".join(lines) + "\n"


def write(path: Path = CSV) -> Path:
    path = Path(path)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(to_csv_text(generate()))
    os.replace(partial, path)
    return path


if __name__ == "__main__":
    print(f"wrote {write()} (synthetic, {ROWS} wines)")
