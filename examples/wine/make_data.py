"""Writes winequality-red.csv: a synthetic stand-in for the UCI red-wine data set.

The real file cannot be downloaded where modelgate is built and tested, so this generates a
deterministic data set with the same columns, layout (semicolon-separated, quoted header) and
realistic ranges and means for 1,599 wines, whose quality (3-8, mostly 5 and 6) really depends
on the features (more alcohol and sulphates, less volatile acidity: better wine), so a classifier
has something to learn. It is synthetic: do not draw conclusions about wine from it.
"""

from pathlib import Path

import numpy as np

COLUMNS = ["fixed acidity", "volatile acidity", "citric acid", "residual sugar", "chlorides",
           "free sulfur dioxide", "total sulfur dioxide", "density", "pH", "sulphates",
           "alcohol", "quality"]
ROWS = 1599
HERE = Path(__file__).resolve().parent


def generate(seed: int = 20171) -> np.ndarray:
    rng = np.random.default_rng(seed)
    fixed = np.clip(rng.normal(8.3, 1.7, ROWS), 4.6, 15.9)
    volatile = np.clip(rng.gamma(6.0, 0.088, ROWS), 0.12, 1.58)
    citric = np.clip(0.06 * (fixed - 8.3) + rng.normal(0.27, 0.17, ROWS), 0.0, 1.0)
    sugar = np.clip(rng.lognormal(0.85, 0.35, ROWS), 0.9, 15.5)
    chlorides = np.clip(rng.lognormal(-2.5, 0.3, ROWS), 0.012, 0.611)
    free_so2 = np.clip(rng.gamma(2.6, 6.0, ROWS), 1.0, 72.0).round()
    total_so2 = np.clip(free_so2 * rng.uniform(1.5, 4.5, ROWS) + rng.normal(10, 8, ROWS),
                        6.0, 289.0).round()
    alcohol = np.clip(rng.gamma(9.0, 0.3, ROWS) + 7.7, 8.4, 14.9)
    density = np.clip(0.9967 + 0.0007 * (fixed - 8.3) - 0.0009 * (alcohol - 10.4)
                      + 0.0003 * (sugar - 2.5) + rng.normal(0, 0.0008, ROWS), 0.990, 1.004)
    ph = np.clip(3.31 - 0.06 * (fixed - 8.3) + rng.normal(0, 0.11, ROWS), 2.74, 4.01)
    sulphates = np.clip(rng.lognormal(-0.45, 0.22, ROWS), 0.33, 2.0)
    score = (5.6 + 0.75 * (alcohol - 10.4) - 2.2 * (volatile - 0.53)
             + 1.6 * (sulphates - 0.66) + 0.25 * (citric - 0.27)
             - 0.008 * (total_so2 - 46) + rng.normal(0, 0.55, ROWS))
    quality = np.clip(np.rint(score), 3, 8)
    return np.column_stack([fixed, volatile, citric, sugar, chlorides, free_so2, total_so2,
                            density, ph, sulphates, alcohol, quality])


def write(path: Path = HERE / "winequality-red.csv") -> Path:
    data = generate()
    decimals = [1, 3, 2, 1, 3, 0, 0, 5, 2, 2, 1, 0]
    lines = [";".join(f'"{c}"' for c in COLUMNS)]
    for row in data:
        lines.append(";".join(f"{v:.{d}f}" if d else f"{int(v)}"
                              for v, d in zip(row, decimals)))
    path.write_text("\n".join(lines) + "\n")
    return path


if __name__ == "__main__":
    print(f"wrote {write()}")
