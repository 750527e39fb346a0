"""Two small process data sets (t, COD1, Xv1) from a batch bioreactor model, and a CSV loader.

Document 000's autoencoder data (three variables named t, COD1 and Xv1: time, chemical oxygen
demand and viable biomass) were never published. We generate stand-ins from the textbook model of
a batch culture with Monod growth kinetics (Monod 1949):

    mu(S)  = mu_max * S / (K_s + S)               specific growth rate, 1/h
    dX/dt  = (mu(S) - k_d) * X                    viable biomass, mg/L
    dS/dt  = -mu(S) * X / Y_xs                    substrate, measured as COD, mg/L

under two operating conditions (``CONDITIONS``: a rich, fast-growing run and a leaner, slower one
with more decay and twice the noise), integrated with scipy's ``solve_ivp`` and sampled at regular
times with multiplicative Gaussian measurement noise. The parameter values are plausible for an
aerobic culture on a COD-rich waste stream; they are ours, not the document's.

``load_process_csv`` takes a user's real three-column file instead; ``split_and_scale`` makes the
train / test / validation arrays the autoencoders learn from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.integrate import solve_ivp

COLUMNS = ["t", "COD1", "Xv1"]
MIN_ROWS = 20


@dataclass(frozen=True)
class BatchCulture:
    """Parameters of one batch run (units in the comments)."""

    mu_max: float  # maximum specific growth rate, 1/h
    K_s: float  # half-saturation constant, mg COD/L
    Y_xs: float  # biomass yield, mg biomass per mg COD consumed
    k_d: float  # death / decay rate, 1/h
    S0: float  # initial COD, mg/L
    X0: float  # initial viable biomass, mg/L
    hours: float  # length of the run, h
    noise: float  # relative measurement noise (standard deviation / value)


# condition 1: more substrate, faster growth, low noise; condition 2: less substrate, more inoculum,
# slower growth with more decay (biomass declines after the substrate is gone), noisier sensors
CONDITIONS = {
    1: BatchCulture(mu_max=0.35, K_s=800.0, Y_xs=0.45, k_d=0.010, S0=5000.0, X0=100.0, hours=48.0, noise=0.01),
    2: BatchCulture(mu_max=0.22, K_s=400.0, Y_xs=0.55, k_d=0.025, S0=3000.0, X0=250.0, hours=48.0, noise=0.02),
}


def simulate(culture: BatchCulture, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free COD and biomass of ``culture`` at times ``t`` (h)."""
    def rhs(_t: float, state: np.ndarray) -> list[float]:
        S, X = max(state[0], 0.0), max(state[1], 0.0)
        mu = culture.mu_max * S / (culture.K_s + S)
        return [-mu * X / culture.Y_xs, (mu - culture.k_d) * X]

    sol = solve_ivp(rhs, (0.0, culture.hours), [culture.S0, culture.X0], t_eval=t, method="LSODA",
                    rtol=1e-8, atol=1e-6)
    if not sol.success:
        raise RuntimeError(f"the bioreactor model could not be integrated: {sol.message}")
    return np.clip(sol.y[0], 0, None), np.clip(sol.y[1], 0, None)


def make_process_dataset(condition: int = 1, n_samples: int = 200, noise: float | None = None,
                         seed: int = 0) -> pd.DataFrame:
    """The data set of operating ``condition`` (1 or 2): ``n_samples`` rows of t, COD1, Xv1."""
    if condition not in CONDITIONS:
        raise ValueError(f"condition must be one of {sorted(CONDITIONS)}, got {condition!r}")
    if n_samples < MIN_ROWS:
        raise ValueError(f"n_samples must be at least {MIN_ROWS}, got {n_samples}")
    culture = CONDITIONS[condition]
    noise = culture.noise if noise is None else float(noise)
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise is a relative standard deviation and must be >= 0, got {noise!r}")
    t = np.linspace(0.0, culture.hours, n_samples)  # (n_samples,) sampling times, h
    cod, biomass = simulate(culture, t)  # (n_samples,) each, mg/L
    # multiplicative Gaussian measurement noise, seeded per condition so the two sets differ
    rng = np.random.default_rng(seed + 1000 * condition)
    cod = cod * (1 + noise * rng.standard_normal(n_samples))
    biomass = biomass * (1 + noise * rng.standard_normal(n_samples))
    return pd.DataFrame({"t": t, "COD1": np.clip(cod, 0, None), "Xv1": np.clip(biomass, 0, None)})


def load_process_csv(path: Path | str) -> pd.DataFrame:
    """A user's own three-column CSV (t, COD1, Xv1), checked; one clear ValueError per problem.

    Line numbers in the messages count the header as line 1, as a text editor does.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; expected a CSV file with columns {', '.join(COLUMNS)}")
    try:
        # utf-8-sig drops the byte-order mark that spreadsheet programs put before the first header
        df = pd.read_csv(path, skipinitialspace=True, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path.name}: the file is empty; expected a header line {','.join(COLUMNS)} "
                         f"and at least {MIN_ROWS} rows") from None
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise ValueError(f"{path.name}: not readable as a comma-separated text file ({exc})") from None
    df.columns = [str(c).strip() for c in df.columns]
    found = list(df.columns)
    if sorted(found) != sorted(COLUMNS):
        missing = [c for c in COLUMNS if c not in found]
        extra = [c for c in found if c not in COLUMNS]
        hint = ""
        if len(found) == 1 and any(sep in found[0] for sep in (";", "\t")):
            hint = " (the file seems to use ';' or tabs between values: save it with commas)"
        raise ValueError(f"{path.name}: expected exactly the columns {COLUMNS}, found {found}; "
                         f"missing {missing}, unexpected {extra}{hint}")
    df = df[COLUMNS]  # (n_rows, 3) in the canonical order
    for col in COLUMNS:
        numeric = pd.to_numeric(df[col], errors="coerce")
        bad = numeric.isna() & df[col].notna()
        if bad.any():
            rows = np.flatnonzero(bad.to_numpy())
            raise ValueError(f"{path.name}: column {col!r} must be numeric; line {rows[0] + 2} holds "
                             f"{df[col].iloc[rows[0]]!r} ({len(rows)} non-numeric value(s) in that column)")
        df[col] = numeric.astype(float)
    missing_values = df.isna()  # (n_rows, 3) True where a cell is empty
    if missing_values.any().any():
        lines = (np.flatnonzero(missing_values.any(axis=1).to_numpy()) + 2).tolist()
        cols = [c for c in COLUMNS if missing_values[c].any()]
        more = f" and {len(lines) - 10} more" if len(lines) > 10 else ""
        raise ValueError(f"{path.name}: empty or NaN values in column(s) {cols} on line(s) {lines[:10]}{more}")
    if not np.isfinite(df.to_numpy()).all():
        lines = (np.flatnonzero(~np.isfinite(df.to_numpy()).all(axis=1)) + 2).tolist()
        raise ValueError(f"{path.name}: infinite values are not allowed (line(s) {lines[:10]})")
    if len(df) < MIN_ROWS:
        raise ValueError(f"{path.name}: {len(df)} rows is too few; expected at least {MIN_ROWS}")
    return df


@dataclass
class Splits:
    """Train / test / validation rows scaled to [0, 1] with the training set's minima and maxima."""

    train: np.ndarray  # (n_train, 3)
    test: np.ndarray  # (n_test, 3)
    validation: np.ndarray  # (n_val, 3)
    minimum: np.ndarray  # (3,) per-column minimum of the training rows
    maximum: np.ndarray  # (3,) per-column maximum of the training rows

    def unscale(self, scaled: np.ndarray) -> np.ndarray:
        """Back to the data's own units: (n, 3) scaled -> (n, 3) in t, COD1, Xv1 units."""
        return scaled * (self.maximum - self.minimum) + self.minimum

    def scale(self, raw: np.ndarray) -> np.ndarray:
        """Raw (n, 3) rows in t, COD1, Xv1 units -> the training set's [0, 1] scale."""
        return (np.asarray(raw, dtype=float) - self.minimum) / (self.maximum - self.minimum)


def split_and_scale(df: pd.DataFrame, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
                    seed: int = 0) -> Splits:
    """Shuffle rows into train / test / validation and min-max scale all three by the training rows.

    Returns a :class:`Splits` (``s.train``, ``s.test``, ``s.validation``, ``s.unscale``).
    Test and validation rows may fall slightly outside [0, 1]: they are scaled with the training rows'
    minimum and maximum so that nothing about them leaks into the scaler.
    """
    if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-9 or min(fractions) <= 0:
        raise ValueError(f"fractions must be three positive numbers summing to 1, got {fractions}")
    absent = [c for c in COLUMNS if c not in df.columns]
    if absent:
        raise ValueError(f"the data frame lacks column(s) {absent}; expected {COLUMNS}, found {list(df.columns)}")
    data = df[COLUMNS].to_numpy(dtype=float)  # (n_rows, 3)
    if not np.isfinite(data).all():
        raise ValueError("the data contain NaN or infinite values; load CSV files with load_process_csv")
    order = np.random.default_rng(seed).permutation(len(data))
    n_train, n_test = int(round(fractions[0] * len(data))), int(round(fractions[1] * len(data)))
    parts = np.split(data[order], [n_train, n_train + n_test])  # (n_train, 3), (n_test, 3), (n_val, 3)
    if min(len(p) for p in parts) < 1:
        raise ValueError(f"{len(data)} rows are too few to split by {fractions}: "
                         f"got {[len(p) for p in parts]} train/test/validation rows")
    lo, hi = parts[0].min(axis=0), parts[0].max(axis=0)  # (3,) each
    span = np.where(hi > lo, hi - lo, 1.0)  # a constant column keeps span 1 instead of dividing by 0
    scaled = [(p - lo) / span for p in parts]
    return Splits(*scaled, minimum=lo, maximum=lo + span)
