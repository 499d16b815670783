"""Lesson 11 support: synthetic hiring and learner data, fairness and k-anonymity metrics, the model card, the fairness explorer and the exercises."""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from academy.learn import exercise
from academy.learn.widgets import show_figure

NOTEBOOK = "11_responsible_ai"
RISK_CLASSES = ("unacceptable", "high", "limited", "minimal")


# ---------------------------------------------------------------- fairness

def make_hiring_data(n: int = 4000, seed: int = 0) -> pd.DataFrame:
    """Synthetic past hiring decisions, biased against group B, with a postcode that betrays the group.

    Skill and experience are drawn identically for both groups, so any gap in the model's
    selection rates comes from the biased historical labels, reached through the proxy.
    """
    if n < 100:
        raise ValueError(f"n should be at least 100 for stable group rates, got {n}")
    rng = np.random.default_rng(seed)
    group = np.where(rng.uniform(size=n) < 0.6, "A", "B")
    skill = rng.normal(size=n)
    experience = rng.poisson(4, size=n).astype(float)
    lives_north = (rng.uniform(size=n) < np.where(group == "B", 0.85, 0.15)).astype(int)
    logit = 1.6 * skill + 0.25 * (experience - 4) + 0.1 - 1.6 * (group == "B")
    hired = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"group": group, "skill_test": skill.round(2), "experience_years": experience,
                         "lives_north": lives_north, "hired": hired})


@dataclass
class GroupRates:
    selection_rate: float
    tpr: float
    fpr: float
    n: int


@dataclass
class FairnessReport:
    """Per-group rates and the two gap metrics computed from them."""

    groups: dict[str, GroupRates]

    @property
    def demographic_parity_difference(self) -> float:
        rates = [g.selection_rate for g in self.groups.values()]
        return float(max(rates) - min(rates))

    @property
    def equalized_odds_difference(self) -> float:
        """The larger of the true-positive-rate gap and the false-positive-rate gap between groups."""
        tprs = [g.tpr for g in self.groups.values()]
        fprs = [g.fpr for g in self.groups.values()]
        return float(max(max(tprs) - min(tprs), max(fprs) - min(fprs)))


def fairness_report(y_true: Any, y_pred: Any, groups: Any) -> FairnessReport:
    y, p, g = np.asarray(y_true), np.asarray(y_pred), np.asarray(groups)
    if not (len(y) == len(p) == len(g)):
        raise ValueError("labels, predictions and groups must be equally long")
    out = {}
    for name in sorted(set(g.tolist())):
        m = g == name
        pos, neg = m & (y == 1), m & (y == 0)
        out[str(name)] = GroupRates(
            selection_rate=float(p[m].mean()),
            tpr=float(p[pos].mean()) if pos.any() else float("nan"),
            fpr=float(p[neg].mean()) if neg.any() else float("nan"),
            n=int(m.sum()),
        )
    if len(out) < 2:
        raise ValueError("fairness needs at least two groups")
    return FairnessReport(out)


def decide(scores: Any, groups: Any, thresholds: dict[str, float]) -> np.ndarray:
    """Select everyone whose score reaches their group's threshold."""
    s, g = np.asarray(scores, dtype=float), np.asarray(groups)
    missing = set(g.tolist()) - thresholds.keys()
    if missing:
        raise ValueError(f"no threshold for group(s) {sorted(missing)}")
    return (s >= np.array([thresholds[x] for x in g])).astype(int)


def parity_thresholds(scores: Any, groups: Any, target_rate: float) -> dict[str, float]:
    """Per-group thresholds that select ``target_rate`` of every group (post-processing for demographic parity)."""
    if not 0 < target_rate < 1:
        raise ValueError(f"target_rate must be between 0 and 1, got {target_rate}")
    s, g = np.asarray(scores, dtype=float), np.asarray(groups)
    return {str(name): float(np.quantile(s[g == name], 1 - target_rate)) for name in sorted(set(g.tolist()))}


def fairness_explorer(y_true: Any, scores: Any, groups: Any):
    """One threshold slider per group; bars show each group's selection rate, TPR and FPR."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    names = sorted(set(np.asarray(groups).tolist()))
    sliders = {n: widgets.FloatSlider(value=0.5, min=0.05, max=0.95, step=0.01, description=f"group {n}") for n in names}
    out = widgets.Output()
    box = widgets.VBox([widgets.HBox(list(sliders.values())), out])
    box.result = None

    def redraw(_change: Any = None) -> None:
        rep = fairness_report(y_true, decide(scores, groups, {n: s.value for n, s in sliders.items()}), groups)
        box.result = rep
        fig, ax = plt.subplots(figsize=(6, 3))
        width = 0.8 / len(names)
        for i, n in enumerate(names):
            r = rep.groups[n]
            ax.bar(np.arange(3) + i * width, [r.selection_rate, r.tpr, r.fpr], width, label=f"group {n}")
        ax.set_xticks(np.arange(3) + width * (len(names) - 1) / 2, ["selection rate", "TPR", "FPR"])
        ax.set_ylim(0, 1)
        ax.set_title(f"DP difference {rep.demographic_parity_difference:.3f}, "
                     f"EO difference {rep.equalized_odds_difference:.3f}")
        ax.legend()
        show_figure(out, fig, "fairness by group")

    for s in sliders.values():
        s.observe(redraw, names="value")
    redraw()
    return box


# ---------------------------------------------------------------- privacy

_FIRST = ["Anna", "Bram", "Daan", "Emma", "Fleur", "Jan", "Lotte", "Milan", "Noor", "Sem", "Tess", "Yara", "Lucas", "Sophie"]
_LAST = ["de Vries", "Jansen", "Bakker", "Visser", "Smit", "Meijer", "de Boer", "Mulder", "Bos", "Dijkstra", "Hoekstra", "Postma"]


def make_learner_records(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """Fictitious course records with direct identifiers (name, e-mail, student id) and quasi-identifiers."""
    rng = np.random.default_rng(seed)
    first, last = rng.choice(_FIRST, n), rng.choice(_LAST, n)
    birth = pd.Timestamp("1990-01-01") + pd.to_timedelta(rng.integers(0, 365 * 14, n), unit="D")
    areas = rng.choice([9711, 9712, 9713, 9721, 9722, 9731, 9741, 9742, 9351, 9401], n)
    letters = [chr(65 + a) + chr(65 + b) for a, b in rng.integers(0, 26, (n, 2))]
    return pd.DataFrame({
        "student_id": [f"s{4000000 + i * 37 % 999983:07d}" for i in range(n)],
        "name": [f"{f} {l}" for f, l in zip(first, last)],
        "email": [f"{f.lower()}.{l.lower().replace(' ', '')}{i}@example.org" for i, (f, l) in enumerate(zip(first, last))],
        "birth_date": birth.strftime("%Y-%m-%d"),
        "postcode": [f"{a} {x}" for a, x in zip(areas, letters)],
        "gender": rng.choice(["F", "M", "X"], n, p=[0.48, 0.48, 0.04]),
        "grade": rng.normal(7, 1.2, n).clip(1, 10).round(1),
    })


def pseudonym_reference(value: str, key: bytes) -> str:
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def pseudonymise(records: pd.DataFrame, key: bytes) -> pd.DataFrame:
    """Replace identity by a keyed pseudonym and coarsen the quasi-identifiers.

    A keyed HMAC (not a plain hash) matters: student numbers are few enough to hash
    them all and look the result up, unless one needs the secret key to do so.
    """
    if len(key) < 16:
        raise ValueError("use a secret key of at least 16 random bytes, e.g. secrets.token_bytes(32)")
    out = pd.DataFrame({"pseudonym": [pseudonym_reference(s, key)[:16] for s in records["student_id"]]})
    years = pd.to_datetime(records["birth_date"]).dt.year
    out["birth_years"] = [f"{y - y % 5}-{y - y % 5 + 4}" for y in years]
    out["region"] = records["postcode"].str[:2] + "xx"
    out["grade"] = records["grade"].to_numpy()
    return out


def k_anonymity(table: pd.DataFrame, quasi_identifiers: list[str]) -> int:
    """The size of the smallest group of rows that share all quasi-identifier values."""
    missing = [c for c in quasi_identifiers if c not in table.columns]
    if missing:
        raise ValueError(f"no such column(s): {missing}")
    return int(table.groupby(quasi_identifiers).size().min())


# ---------------------------------------------------------------- model card

@dataclass
class ModelCard:
    """The facts a model card reports (after Mitchell et al., 2019)."""

    name: str
    version: str
    owner: str
    description: str
    intended_use: str
    out_of_scope: str
    risk_class: str
    training_data: str
    evaluation: dict[str, float]
    fairness: dict[str, float]
    limitations: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.risk_class not in RISK_CLASSES:
            raise ValueError(f"risk_class must be one of {RISK_CLASSES}, got {self.risk_class!r}")


_CARD = """# Model card: {{ c.name }} (version {{ c.version }})

**Owner**: {{ c.owner }}  ·  **EU AI Act risk class**: {{ c.risk_class }}

## Model details
{{ c.description }}

## Intended use
{{ c.intended_use }}

## Out-of-scope uses
{{ c.out_of_scope }}

## Training data
{{ c.training_data }}

## Evaluation
| Metric | Value |
| --- | --- |
{% for k, v in c.evaluation.items() %}| {{ k }} | {{ '%.3f' % v }} |
{% endfor %}
## Fairness
| Metric | Value |
| --- | --- |
{% for k, v in c.fairness.items() %}| {{ k }} | {{ '%.3f' % v }} |
{% endfor %}
## Limitations and ethical considerations
{% for item in c.limitations %}- {{ item }}
{% endfor %}"""


def render_model_card(card: ModelCard) -> str:
    """The card as Markdown; jinja2 keeps the layout in one readable template."""
    import jinja2

    return jinja2.Environment(autoescape=False, keep_trailing_newline=True).from_string(_CARD).render(c=card)


# ---------------------------------------------------------------- exercises

EXERCISE_CASES = {
    "A bank's chatbot tells customers their account balance": ("limited", "Article 50: what must people be told when they talk to an AI?"),
    "An HR system rejects job applicants based on their recorded video interviews": ("high", "Annex III, area 4: employment."),
    "A supermarket forecasts how many loaves of bread it will sell tomorrow": ("minimal", "Does it affect anyone's rights, safety or access to services?"),
    "Police identify wanted persons in real time with cameras on a public square": ("unacceptable", "Article 5(1)(h): real-time remote biometric identification."),
    "An online exam platform scores essays to determine students' final grades": ("high", "Annex III, area 3: education."),
}


@exercise(
    NOTEBOOK, "risk_classes", title="Classify use cases under the AI Act",
    hint="Start from the top: is it a prohibited practice (Article 5)? If not, is it in an Annex III area or a safety product (high)? "
         "If not, does it talk to people or generate content (limited, Article 50)? Otherwise it is minimal risk.",
    solution="```python\nanswers = {\n" + "".join(f"    {k!r}: {v[0]!r},\n" for k, v in EXERCISE_CASES.items()) + "}\n```",
)
def risk_classes_exercise(answers) -> str:
    assert isinstance(answers, dict), "Give a dict that maps each use case (the given text) to a risk class."
    missing = [k for k in EXERCISE_CASES if k not in answers]
    assert not missing, f"{len(missing)} use case(s) have no answer yet, e.g. {missing[0]!r}."
    if all(answers[k] is None or answers[k] is Ellipsis for k in EXERCISE_CASES):
        raise NotImplementedError
    blank = [k for k in EXERCISE_CASES if answers[k] is None or answers[k] is Ellipsis]
    assert not blank, f"{len(blank)} use case(s) still have no risk class, e.g. {blank[0]!r}."
    wrong = []
    for case, (want, why) in EXERCISE_CASES.items():
        got = str(answers[case]).strip().lower()
        if got not in RISK_CLASSES:
            raise AssertionError(f"{got!r} is not a risk class; use one of {', '.join(RISK_CLASSES)}.")
        if got != want:
            wrong.append(f"{case!r}: not {got}. {why}")
    assert not wrong, f"{len(wrong)} of {len(EXERCISE_CASES)} need another look:\n   - " + "\n   - ".join(wrong)
    return "In a real project, record the reasoning and have your legal or compliance officer confirm it."


@exercise(
    NOTEBOOK, "demographic_parity", title="Demographic parity difference",
    hint="For each group take the mean of y_pred over that group's rows (its selection rate); return the largest minus the smallest.",
    solution="```python\ndef demographic_parity_difference(y_pred, group):\n    y_pred, group = np.asarray(y_pred), np.asarray(group)\n"
             "    rates = [y_pred[group == g].mean() for g in np.unique(group)]\n    return max(rates) - min(rates)\n```",
)
def demographic_parity_exercise(fn) -> str:
    y_pred = np.array([1, 0, 1, 1, 0, 0, 1, 0, 0, 0])
    group = np.array(["A", "A", "A", "A", "B", "B", "B", "B", "B", "C"])
    got = float(fn(y_pred, group))
    if abs(got - 0.55) < 1e-9:
        raise AssertionError("With three groups, compare the highest and the lowest selection rate (0.75 for A, 0 for C).")
    if abs(got - abs(y_pred[group == "A"].mean() - y_pred.mean())) < 1e-9:
        raise AssertionError("Compare groups with each other, not one group with the overall rate.")
    if abs(got + 0.75) < 1e-9:
        raise AssertionError("The difference should not be negative: take max minus min.")
    assert abs(got - 0.75) < 1e-9, f"Selection rates are A 0.75, B 0.2, C 0.0, so the difference is 0.75; you gave {got:.3f}."
    return "Zero means every group is selected at the same rate, whatever their labels."


@exercise(
    NOTEBOOK, "pseudonym", title="A keyed pseudonym",
    hint="hmac.new(key, student_id.encode(), hashlib.sha256).hexdigest()",
    solution="```python\ndef pseudonym(student_id, key):\n    return hmac.new(key, student_id.encode(), hashlib.sha256).hexdigest()\n```",
)
def pseudonym_exercise(fn) -> str:
    key1, key2 = b"k" * 32, b"q" * 32
    a = fn("s4000037", key1)
    assert isinstance(a, str), f"Return the pseudonym as a (hex) string, not {type(a).__name__}."
    assert a == fn("s4000037", key1), "The same student and key must always give the same pseudonym, or records cannot be linked."
    assert "4000037" not in a, "The pseudonym still contains the student number."
    if a == hashlib.sha256(b"s4000037").hexdigest():
        raise AssertionError("A plain hash is not enough: anyone can hash all student numbers and look yours up. Use the secret key (HMAC).")
    assert a != fn("s4000037", key2), "A different key should give a different pseudonym: did you use the key?"
    assert a != fn("s4000038", key1), "Different students must get different pseudonyms."
    assert a == pseudonym_reference("s4000037", key1), "Use HMAC with SHA-256 over the UTF-8 bytes of the id, and return hexdigest()."
    return "Whoever holds the key can re-identify: under the GDPR this is still personal data, so guard the key."
