"""Lesson support for notebooks 10-12 (evaluation, responsible AI, batch jobs and DDP): checks, widgets, scripts."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from support.skip import need
from support.lessons import one_torch_thread, outcome, progress  # noqa: F401 (autouse fixtures)
from academy_lessons import n10_evaluation as n10
from academy_lessons import n11_responsible_ai as n11
from academy_lessons import n12_ddp_train
from academy_lessons import n12_notebook_to_batch_job as n12

# ---------------------------------------------------------------- 10 evaluation

def test_reliability_and_ece_against_hand_computed_bins():
    """Do the reliability bins and ECE match a hand computation, with p = 1.0 landing in the last bin?"""
    probs = np.array([0.1, 0.1, 0.9, 1.0])
    labels = np.array([0, 1, 1, 1])
    rel = n10.reliability(probs, labels, n_bins=2)
    assert rel.counts.tolist() == [2, 2]
    assert rel.mean_predicted.tolist() == pytest.approx([0.1, 0.95]) and rel.observed.tolist() == [0.5, 1.0]
    assert rel.ece == pytest.approx(0.5 * 0.4 + 0.5 * 0.05)
    with pytest.raises(ValueError, match="0 or 1"):
        n10.reliability([0.2], [2])


def test_bootstrap_interval_contains_the_estimate_and_narrows_with_more_data():
    """Does the bootstrap interval contain the mean and shrink roughly with the square root of the sample size?"""
    rng = np.random.default_rng(0)
    small = n10.bootstrap_ci((rng.uniform(size=100) < 0.8).astype(float), n_boot=500)
    large = n10.bootstrap_ci((rng.uniform(size=1600) < 0.8).astype(float), n_boot=500)
    assert small.low < small.estimate < small.high
    assert 2.5 < small.width / large.width < 6
    with pytest.raises(ValueError):
        n10.bootstrap_ci([1.0])


def test_threshold_explorer_recounts_the_confusion_matrix():
    """Does moving the threshold slider recount TP/FP/TN/FN the way confusion_at_threshold does?"""
    labels, probs = np.array([0, 0, 1, 1, 1]), np.array([0.2, 0.6, 0.4, 0.7, 0.9])
    r = n10.confusion_at_threshold(labels, probs, 0.5)
    assert (r.tp, r.fp, r.tn, r.fn) == (2, 1, 1, 1) and r.precision == pytest.approx(2 / 3)
    box = n10.threshold_explorer(labels, probs)
    box.children[0].value = 0.3
    assert (box.result.tp, box.result.fp) == (3, 1)


def test_evaluation_exercises():
    """Do the recall, ECE and bootstrap checks pass correct answers and name precision, unweighted bins and a zero-width interval?"""
    assert outcome(n10.per_class_recall_exercise, lambda cm: np.diag(cm) / np.asarray(cm).sum(1))[0]
    passed, msg = outcome(n10.per_class_recall_exercise, lambda cm: np.diag(cm) / np.asarray(cm).sum(0))
    assert not passed and "precision" in msg
    assert outcome(n10.ece_exercise, n10.expected_calibration_error)[0]
    unweighted = lambda p, y, n_bins=10: float(np.nanmean(np.abs(n10.reliability(p, y, n_bins).mean_predicted - n10.reliability(p, y, n_bins).observed)))  # noqa: E731
    passed, msg = outcome(n10.ece_exercise, unweighted)
    assert not passed and "weight" in msg
    assert outcome(n10.bootstrap_exercise, lambda v, n_boot=2000, seed=0: (n10.bootstrap_ci(v, n_boot=n_boot, seed=seed).low, n10.bootstrap_ci(v, n_boot=n_boot, seed=seed).high))[0]
    passed, msg = outcome(n10.bootstrap_exercise, lambda v, n_boot=2000, seed=0: (np.mean(v) - 1e-4, np.mean(v) + 1e-4))
    assert not passed and "replacement" in msg


# ---------------------------------------------------------------- 11 responsible AI

def test_unaware_hiring_model_is_biased_and_parity_thresholds_fix_the_rate_gap():
    """Does a model without the group column still select group B less often, and do per-group thresholds close that gap?"""
    from sklearn.linear_model import LogisticRegression

    df = n11.make_hiring_data(3000, seed=1)
    features = ["skill_test", "experience_years", "lives_north"]
    scores = LogisticRegression().fit(df[features], df.hired).predict_proba(df[features])[:, 1]
    unaware = n11.fairness_report(df.hired, (scores >= 0.5).astype(int), df.group)
    assert unaware.demographic_parity_difference > 0.1
    fixed = n11.decide(scores, df.group, n11.parity_thresholds(scores, df.group, 0.4))
    assert n11.fairness_report(df.hired, fixed, df.group).demographic_parity_difference < 0.02
    with pytest.raises(ValueError, match="no threshold"):
        n11.decide(scores, df.group, {"A": 0.5})


def test_fairness_report_on_a_hand_example_and_explorer_sliders():
    """Are selection rate, TPR and FPR gaps right on a small example, and does a group's slider change its rate?"""
    y = np.array([1, 0, 1, 0, 1, 0])
    pred = np.array([1, 1, 1, 0, 0, 0])
    g = np.array(["A", "A", "A", "B", "B", "B"])
    rep = n11.fairness_report(y, pred, g)
    assert rep.demographic_parity_difference == pytest.approx(1.0)
    assert rep.groups["A"].tpr == 1 and rep.groups["B"].tpr == 0 and rep.equalized_odds_difference == pytest.approx(1.0)
    box = n11.fairness_explorer(y, np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4]), g)
    box.children[0].children[1].value = 0.45  # group B's threshold
    assert box.result.groups["B"].selection_rate == pytest.approx(2 / 3)


def test_pseudonymisation_drops_identifiers_and_reaches_k_anonymity():
    """Does pseudonymising remove direct identifiers, use the key, refuse a short key, and lift k-anonymity from 1 to at least 5?"""
    records = n11.make_learner_records(600, seed=0)
    assert n11.k_anonymity(records, ["birth_date", "postcode", "gender"]) == 1
    a = n11.pseudonymise(records, b"a" * 32)
    b = n11.pseudonymise(records, b"b" * 32)
    assert not {"name", "email", "student_id", "postcode", "birth_date"} & set(a.columns)
    assert (a.pseudonym != b.pseudonym).all() and a.pseudonym.is_unique
    assert hashlib.sha256(records.student_id[0].encode()).hexdigest()[:16] != a.pseudonym[0]
    assert n11.k_anonymity(a, ["birth_years", "region"]) >= 5
    with pytest.raises(ValueError, match="16"):
        n11.pseudonymise(records, b"short")


def test_model_card_renders_measured_numbers_and_rejects_unknown_risk_class():
    """Does the model card show the given metrics as a table, and is an invalid risk class refused?"""
    card = n11.ModelCard(name="m", version="1", owner="o", description="d", intended_use="u", out_of_scope="x",
                         risk_class="high", training_data="t", evaluation={"accuracy": 0.8123},
                         fairness={"DP difference": 0.1744}, limitations=["proxy"])
    text = n11.render_model_card(card)
    assert "| accuracy | 0.812 |" in text and "| DP difference | 0.174 |" in text and "- proxy" in text
    with pytest.raises(ValueError, match="risk_class"):
        n11.ModelCard(**{**card.__dict__, "risk_class": "medium"})


def test_responsible_ai_exercises():
    """Do the risk-class, parity and pseudonym checks pass right answers and point at the specific mistake otherwise?"""
    right = {case: want for case, (want, _why) in n11.EXERCISE_CASES.items()}
    assert outcome(n11.risk_classes_exercise, right)[0]
    assert outcome(n11.risk_classes_exercise, {k: None for k in right})[1].startswith("Not attempted")
    wrong = {**right, next(iter(right)): "minimal"}
    passed, msg = outcome(n11.risk_classes_exercise, wrong)
    assert not passed and "Article 50" in msg
    dpd = lambda y, g: max(y[g == x].mean() for x in set(g)) - min(y[g == x].mean() for x in set(g))  # noqa: E731
    assert outcome(n11.demographic_parity_exercise, dpd)[0]
    assert outcome(n11.pseudonym_exercise, n11.pseudonym_reference)[0]
    passed, msg = outcome(n11.pseudonym_exercise, lambda s, key: hashlib.sha256(s.encode()).hexdigest())
    assert not passed and "HMAC" in msg


# ---------------------------------------------------------------- 12 notebook to batch job

def test_batch_spec_rejects_shell_syntax_and_the_script_quotes_every_word(tmp_path):
    """Are job names with shell syntax refused, and does a path with spaces and ';' stay one quoted word in the batch script?"""
    with pytest.raises(ValueError, match="job name"):
        n12.BatchSpec(job_name="x; rm -rf ~")
    with pytest.raises(ValueError, match="time"):
        n12.BatchSpec(time="1 hour")
    with pytest.raises(ValueError, match="job name"):
        n12.BatchSpec(job_name="ok\n")  # '$' alone would let a trailing newline through
    weird = tmp_path / "my runs;echo pwned"
    text = n12.render_batch_script(n12.BatchSpec(gpus=1, partition="gpu"), weird, ["python", str(weird / "t.py"), "--x", "a b"])
    assert "#SBATCH --gpus=1" in text and "#SBATCH --partition=gpu" in text
    assert f"cd '{weird.resolve()}'" in text and "'a b'" in text
    assert n12.batch_script_preview("bad name", 10, 2, 4, 0).startswith("# rejected: job name")
    assert "#SBATCH --time=01:30:00" in n12.batch_script_preview("ok", 90, 2, 4, 0)


def test_batch_script_builder_previews_each_change():
    """Does the builder's preview follow its controls, including a rejection message for a bad name?"""
    box = n12.batch_script_builder()
    (name, minutes), (cpus, _mem, gpus), preview = box.children[0].children, box.children[1].children, box.children[2]
    gpus.value = 2
    minutes.value = 90
    cpus.value = 8
    assert "#SBATCH --gpus=2" in preview.value and "--time=01:30:00" in preview.value and "--cpus-per-task=8" in preview.value
    name.value = "two words"
    assert preview.value.startswith("# rejected")


def test_parse_job_id_and_slurm_status_without_sbatch(monkeypatch, tmp_path):
    """Does parse_job_id accept --parsable output only, and does slurm_status explain a PATH without sbatch?"""
    assert n12.parse_job_id("123;academy\n") == "123"
    with pytest.raises(ValueError):
        n12.parse_job_id("sbatch: error: Batch job submission failed")
    monkeypatch.setenv("PATH", str(tmp_path))  # a real environment without Slurm, not a mock
    status = n12.slurm_status()
    assert not status.available and "not on PATH" in status.reason


def test_batch_job_exercises():
    """Do the sbatch, job-id and shard checks pass right answers and catch a shell string, a swallowed error and overlap?"""
    assert outcome(n12.sbatch_command_exercise, lambda p: ["sbatch", "--parsable", str(p)])[0]
    passed, msg = outcome(n12.sbatch_command_exercise, lambda p: f"sbatch --parsable {p}")
    assert not passed and "shell" in msg
    assert outcome(n12.parse_job_id_exercise, n12.parse_job_id)[0]
    passed, msg = outcome(n12.parse_job_id_exercise, lambda out: out.strip().split(";")[0])
    assert not passed and "ValueError" in msg
    assert outcome(n12.shard_exercise, lambda n, r, w: range(r, n, w))[0]
    passed, msg = outcome(n12.shard_exercise, lambda n, r, w: range(0, n, w))
    assert not passed and "two ranks" in msg


def test_run_dirs_are_fresh_and_a_failed_run_reports_no_result(tmp_path):
    """Does every run get its own directory, and does a failing command never return a result file left by an earlier run?"""
    first, second = n12.new_run_dir(tmp_path), n12.new_run_dir(tmp_path)
    assert first != second and first.is_dir() and second.is_dir()
    (first / "r.json").write_text('{"stale": true}')
    failed = n12.run_local([sys.executable, "-c", "raise SystemExit(3)"], first, Path("r.json"), 60)
    assert failed.returncode == 3 and failed.result is None and not (first / "r.json").exists()


def test_run_shows_its_lines_as_they_come_without_the_torchrun_banner(tmp_path, capsys):
    """With echo, does a run print each output line (stderr too) while it runs, leaving out torchrun's OMP banner?"""
    code = ("import sys, time; print('*' * 20, flush=True); print('Setting OMP_NUM_THREADS environment variable', flush=True); "
            "print('step 1  loss 0.5', flush=True); print('warning on stderr', file=sys.stderr, flush=True)")
    run = n12.run_local([sys.executable, "-c", code], tmp_path, Path("r.json"), 60, echo=True)
    shown = capsys.readouterr().out
    assert run.returncode == 0 and "step 1  loss 0.5" in shown and "warning on stderr" in shown
    assert "OMP_NUM_THREADS" not in shown and "****" not in shown and "OMP_NUM_THREADS" in run.log
    quiet = n12.run_local([sys.executable, "-c", code], tmp_path, Path("r.json"), 60)
    assert capsys.readouterr().out == "" and "step 1" in quiet.log


def test_run_past_its_timeout_is_killed_with_the_processes_it_started(tmp_path):
    """Is a run past its timeout killed together with its children (as torchrun's ranks), keeping what it printed?"""
    code = ("import subprocess, sys; child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); "
            "open('child.pid', 'w').write(str(child.pid)); print('started', flush=True); child.wait()")
    run = n12.run_local([sys.executable, "-c", code], tmp_path, Path("r.json"), timeout=3)
    assert run.returncode == -1 and run.result is None and "timed out after 3 s" in run.log and "started" in run.log
    stat = Path(f"/proc/{(tmp_path / 'child.pid').read_text()}/stat")

    def state() -> str:
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return "gone"

    for _ in range(50):  # SIGKILL is delivered at once; a killed orphan may linger as a zombie ("Z") until reaped
        if state() in ("gone", "Z"):
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"the run's child process outlived it (state {state()})")


def test_background_run_logs_to_a_file_and_is_killed_at_its_timeout(tmp_path):
    """Does a background run write its output to the log file and hand back its result, and is a run past its timeout killed?"""
    write = "import json; print('hello'); json.dump({'ok': 1}, open('r.json', 'w'))"
    job = n12.start_local([sys.executable, "-c", write], tmp_path, Path("out.log"), Path("r.json"))
    run = job.wait(timeout=60)
    assert run.returncode == 0 and run.result == {"ok": 1} and "hello" in (tmp_path / "out.log").read_text()
    slow = n12.start_local([sys.executable, "-c", "import time; time.sleep(120)"], tmp_path, Path("slow.log"), Path("none.json"))
    run = slow.wait(timeout=1)
    assert run.returncode == -1 and run.result is None and "killed" in run.log and slow.process.poll() is not None


def test_training_script_runs_alone_and_resumes_from_its_checkpoint(tmp_path):
    """Does the script train in one process, write its result, and continue from the checkpoint instead of restarting?"""
    script = n12.write_script(tmp_path)
    args = ["--samples", "512", "--hidden", "16", "--checkpoint", "ck.pt", "--log-every", "1000"]
    first = n12.run_local([sys.executable, str(script), "--steps", "60", "--out", "a.json", *args], tmp_path, tmp_path / "a.json", 300)
    assert first.returncode == 0, first.log
    assert first.result["world_size"] == 1 and first.result["last_loss"] < first.result["first_loss"]
    second = n12.run_local([sys.executable, str(script), "--steps", "80", "--out", "b.json", *args], tmp_path, tmp_path / "b.json", 300)
    assert second.returncode == 0 and "resumed" in second.log and second.result["steps_this_run"] == 20
    with pytest.raises(SystemExit) as bad:
        n12_ddp_train.parse_args(["--steps", "0"])
    assert bad.value.code == 2


def test_torchrun_two_gloo_ranks_end_with_identical_weights(tmp_path):
    """Does torchrun --nproc_per_node=2 train the script with gloo on CPU, lower the loss, and leave both ranks' weights identical?"""
    script = n12.write_script(tmp_path)
    cmd = n12.torchrun_command(script, 2, ["--steps", "40", "--samples", "512", "--hidden", "16", "--out", "r.json", "--backend", "gloo"])
    run = n12.run_local(cmd, tmp_path, tmp_path / "r.json", 300)
    assert run.returncode == 0, run.log
    assert run.result["world_size"] == 2 and run.result["backend"] == "gloo"
    assert run.result["max_weight_diff"] == 0.0 and run.result["last_loss"] < run.result["first_loss"]


@pytest.mark.slurm
@pytest.mark.timeout(300)
def test_lesson_submits_to_real_slurm_and_reads_the_result(tmp_path, monkeypatch):
    """Does a job submitted with lesson.submit run on the real test cluster, reach COMPLETED, leave its log and result,
    and start without the submitting job's SLURM_* settings (which would make srun in the new job fail)?"""
    from testbed import slurm_cluster

    installed = all(shutil.which(t) or os.path.exists(f"/usr/sbin/{t}") for t in ("slurmctld", "slurmd", "munged", "sbatch"))
    need(installed and os.geteuid() == 0, "Slurm, munge and root for the one-node test cluster")
    cluster = slurm_cluster.Cluster()
    was_up = cluster.conf.exists() and slurm_cluster.controller_up(cluster)
    slurm_cluster.start(cluster)
    monkeypatch.setenv("SLURM_CONF", str(cluster.conf))
    monkeypatch.setenv("SLURM_MEM_PER_CPU", "12345")  # as set inside a notebook server's own job
    try:
        assert n12.slurm_status().available
        script = n12.write_script(tmp_path)
        command = [sys.executable, "-u", script.name, "--steps", "40", "--samples", "512", "--hidden", "16", "--out", "r.json"]
        job = tmp_path / "job.sh"
        text = n12.render_batch_script(n12.BatchSpec(job_name="test-12", time="00:05:00", cpus=1, mem="1G"), tmp_path, command)
        job.write_text(text.replace("set -euo pipefail\n", 'set -euo pipefail\necho "mem_per_cpu=${SLURM_MEM_PER_CPU:-unset}"\n'))
        job_id = n12.submit(job)
        done = n12.wait_for(job_id, timeout=240, poll=1.0)
        log = (tmp_path / f"slurm-{job_id}.out").read_text()
        assert done.state == "COMPLETED", log
        result = json.loads((tmp_path / "r.json").read_text())
        assert result["slurm_job_id"] == job_id and f"job {job_id} on" in log and "done: 1 process(es)" in log
        assert "mem_per_cpu=unset" in log
    finally:
        if not was_up:
            slurm_cluster.stop(cluster)
