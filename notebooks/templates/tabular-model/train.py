"""Tabular model: the code that project.ipynb and job.sh share.

Predicts whether a customer cancels (``churned``) from ``data/customers.csv``, a small made-up table
shipped with the template (``make_example_csv`` wrote it). Replace the CSV with your own table and
set ``--target`` to its label column: numeric columns are scaled, text columns one-hot encoded. It
compares a majority-class baseline, logistic regression and gradient boosting by cross-validated
ROC AUC, then scores the best on a held-out test set. Run ``python train.py --help``.
"""
from __future__ import annotations

import argparse
import json
import pickle
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

TARGET = "churned"


def make_example_csv(path: Path, rows: int = 600, seed: int = 0) -> pd.DataFrame:
    """The made-up customer table the template ships (kept so you can see how it was made)."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "months_customer": rng.integers(1, 72, rows),
        "monthly_fee_eur": rng.normal(60, 20, rows).clip(10).round(2),
        "support_tickets": rng.poisson(1.5, rows),
        "plan": rng.choice(["basic", "pro", "enterprise"], rows, p=[0.5, 0.35, 0.15]),
        "region": rng.choice(["north", "east", "south", "west"], rows),
    })
    risk = (-1.0 - 0.04 * df.months_customer + 0.02 * df.monthly_fee_eur + 0.5 * df.support_tickets
            - 0.8 * (df.plan == "enterprise"))
    df[TARGET] = (rng.random(rows) < 1 / (1 + np.exp(-risk))).astype(int)
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
    return df


def load_data(data_dir: Path, target: str = TARGET) -> tuple[pd.DataFrame, pd.Series]:
    """The table's feature columns and its label column; a missing label column is a clear error."""
    path = Path(data_dir) / "customers.csv"
    df = pd.read_csv(path)
    if target not in df.columns:
        raise ValueError(f"{path} has no column {target!r} (columns: {', '.join(df.columns)})")
    return df.drop(columns=[target]), df[target]


def models(x: pd.DataFrame, smoke: bool) -> dict:
    numeric = list(x.select_dtypes("number").columns)
    text = [c for c in x.columns if c not in numeric]
    prep = ColumnTransformer([("num", StandardScaler(), numeric),
                              ("cat", OneHotEncoder(handle_unknown="ignore"), text)])
    return {
        "baseline": make_pipeline(prep, DummyClassifier(strategy="prior")),
        "logistic": make_pipeline(prep, LogisticRegression(max_iter=1000)),
        "boosting": make_pipeline(prep, HistGradientBoostingClassifier(max_iter=30 if smoke else 300, random_state=0)),
    }


def run(data_dir: Path = Path("data"), smoke: bool = False, out: Path | None = None, target: str = TARGET,
        log=print) -> dict:
    """Cross-validate each model on the training part, refit the best, score it on the test part, write the result."""
    start = time.perf_counter()
    x, y = load_data(data_dir, target)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, stratify=y, random_state=0)
    cv = {}
    candidates = models(x, smoke)
    for name, model in candidates.items():
        scores = cross_val_score(model, x_train, y_train, cv=3 if smoke else 5, scoring="roc_auc")
        cv[name] = float(scores.mean())
        log(f"{name}: cross-validated ROC AUC {cv[name]:.3f} ± {scores.std():.3f}")
    best = max(cv, key=cv.get)
    model = candidates[best].fit(x_train, y_train)
    test_auc = float(roc_auc_score(y_test, model.predict_proba(x_test)[:, 1]))
    result = {"best_model": best, "test_auc": test_auc, "cv_auc": cv, "rows": len(x),
              "positive_rate": float(y.mean()), "seconds": round(time.perf_counter() - start, 2)}
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))
        out.with_suffix(".pkl").write_bytes(pickle.dumps(model))
    log(f"best: {best}, test ROC AUC {test_auc:.3f}")
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a quick, small run (for a test)")
    parser.add_argument("--data", type=Path, default=Path("data"), help="the data folder (default: data)")
    parser.add_argument("--target", default=TARGET, help=f"the label column (default: {TARGET})")
    parser.add_argument("--out", type=Path, default=Path("results/result.json"), help="the result file (JSON)")
    args = parser.parse_args(argv)
    return run(args.data, args.smoke, args.out, args.target, log=lambda m: print(m, flush=True))


if __name__ == "__main__":
    main()
