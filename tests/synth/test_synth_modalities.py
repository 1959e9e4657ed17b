"""The modalities beyond tables: file formats, the graph's edges, sentences, and that the data of
each is learnable: the ladder's tree ensemble and the reference agent's program both beat the
constant. Programs run as plain subprocesses here (their results are the subject; the sandboxed
path is the pipeline's)."""

import io
import os
import subprocess
import sys
import wave

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.linear_model import LogisticRegression

from sandmle_jax.agent import prompts, strategies
from sandmle_jax.synth import baselines, domains, graphs, seeds, synthesis, writer
from sandmle_jax.synth import dna as dna_lib
from sandmle_jax.synth.candidate import write_draft
from sandmle_jax.synth.media import MIN_SIDE, SAMPLE_RATE
from sandmle_jax.tasks import grading, profile

SEEDS = seeds.load_seeds()
NEW = ("multimodal_text_binary_auc", "multimodal_image_regression_rmse",
       "graph_node_multiclass_accuracy", "graph_node_binary_auc", "audio_binary_auc",
       "audio_multilabel_auc")


def _data(seed_id, task_seed=3, n_train=None):
    dna = dna_lib.mutate(dna_lib.extract_dna(SEEDS[seed_id]), np.random.default_rng(task_seed),
                         seed=task_seed)
    if n_train:
        dna = dna_lib.TaskDNA.from_dict({**dna.to_dict(), "n_train": n_train,
                                         "n_test": dna_lib.test_size(n_train)})
    return dna, synthesis.synthesize(dna)


def test_the_shipped_seeds_span_seven_modalities():
    assert {s.modality for s in SEEDS.values()} == set(seeds.MODALITIES)
    assert len(seeds.MODALITIES) == 7


@pytest.mark.parametrize("seed_id", ["image_binary_auc", "multimodal_image_regression_rmse"])
def test_images_are_colour_and_at_least_32_pixels(seed_id):
    _, data = _data(seed_id)
    assert data.files
    for content in list(data.files.values())[:20]:
        image = Image.open(io.BytesIO(content))
        assert image.mode == "RGB" and min(image.size) >= MIN_SIDE
    pixels = np.stack([np.asarray(Image.open(io.BytesIO(c)), float)
                       for c in list(data.files.values())[:50]])
    hues = pixels.reshape(len(pixels), -1, 3).std(axis=1).mean(axis=1)
    assert np.ptp(hues) > 5  # colour varies from image to image


def test_audio_clips_are_half_second_mono_wavs():
    dna, data = _data("audio_binary_auc")
    ids = set(data.train["id"]) | set(data.test["id"])
    assert sorted(data.files) == sorted(f"audio/{i}.wav" for i in ids)
    with wave.open(io.BytesIO(next(iter(data.files.values())))) as clip:
        assert (clip.getnchannels(), clip.getsampwidth(), clip.getframerate()) == (1, 2,
                                                                                   SAMPLE_RATE)
        assert clip.getnframes() == dna.input_shape["samples"]


def test_graph_edges_link_known_rows_once_and_carry_signal():
    """Edges join train and test ids, no loops, no repeats; over four tasks a linear model on
    a node's features plus its neighbours' means beats the same model on its own features."""
    gains = []
    for task_seed in range(4):
        dna, data = _data("graph_node_multiclass_accuracy", task_seed, n_train=200)
        edges = pd.read_csv(io.BytesIO(data.files["edges.csv"]))
        nodes = pd.concat([data.train, data.test], ignore_index=True)
        row = {v: i for i, v in enumerate(nodes["id"])}
        assert set(edges["source"]) | set(edges["target"]) <= set(row)
        pairs = [tuple(sorted((row[a], row[b]))) for a, b in zip(edges["source"],
                                                                 edges["target"])]
        assert len(set(pairs)) == len(pairs) and all(a != b for a, b in pairs)
        X = nodes[list(data.baseline.feature_columns)].to_numpy(float)
        X = (X - X.mean(axis=0)) / X.std(axis=0)
        with_graph = np.hstack([X, graphs.neighbour_mean(X, np.array(pairs))])
        n, target = len(data.train), data.baseline.train_targets[0]
        truth = data.answers[target].astype(str).to_numpy()
        accuracy = [np.mean(LogisticRegression(max_iter=2000).fit(F[:n], data.train[target])
                            .predict(F[n:]) == truth) for F in (X, with_graph)]
        gains.append(accuracy[1] - accuracy[0])
    assert np.mean(gains) > 0.03, gains


def test_notes_are_sentences_with_graded_and_negated_mentions():
    _, data = _data("text_binary_auc")
    notes = " ".join(data.train["text"])
    assert all(note.endswith(".") for note in data.train["text"])
    assert "ruled out" in notes or "at all" in notes or "without any" in notes
    assert "severe" in notes and "slight" in notes


@pytest.mark.parametrize("seed_id", ["text_binary_auc", "image_binary_auc", *NEW])
def test_ladder_and_reference_program_beat_the_constant(tmp_path, seed_id):
    dna, data = _data(seed_id, n_train=200)
    task = write_draft("t", dna, data, tmp_path / "task", "procedural")
    env = {**os.environ, "PUBLIC_DIR": str(task.public_dir)}

    def score(name, code):
        workdir = tmp_path / name
        workdir.mkdir()
        (workdir / prompts.DATA_DIR).symlink_to(task.public_dir)
        (workdir / "s.py").write_text(code)
        done = subprocess.run([sys.executable, "s.py"], cwd=workdir, env=env, timeout=300,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        report = grading.grade(task, workdir / "submission.csv")
        assert report.valid_submission, report.error
        return report.score

    better = (lambda a, b: a < b) if dna.lower_is_better else (lambda a, b: a > b)
    constant = score("constant", baselines.script("constant", data.baseline))
    assert better(score("forest", baselines.script("tree_ensemble", data.baseline)), constant)
    program = strategies.solution_code(task, "forest")
    assert ("def sounds(" in program) == (dna.modality == "audio")
    assert ("edges.csv" in program) == (dna.modality == "graph")
    assert better(score("reference", program), constant)
    # The description names what the rows hold.
    text = writer.describe(dna, domains.get_domain(dna.domain), data)
    wanted = {"graph": "edges.csv", "audio": "WAV clip", "image": "colour PNG"}
    assert wanted.get(dna.modality, "") in text
    if dna.modality == "multimodal":
        assert ("free-text note" in text or "colour PNG" in text) and ": numeric" in text


def test_profile_reads_audio_and_graph_tasks(tmp_path):
    audio = tmp_path / "audio"
    (audio / "clips").mkdir(parents=True)
    (audio / "clips" / "a.wav").write_bytes(b"RIFF")
    pd.DataFrame({"id": [1, 2], "clip": ["clips/a.wav", "clips/b.wav"], "y": [0, 1]}).to_csv(
        audio / "train.csv", index=False)
    graph = tmp_path / "graph"
    graph.mkdir()
    pd.DataFrame({"id": [1, 2], "x": [0.5, 0.1], "y": [0, 1]}).to_csv(graph / "train.csv",
                                                                     index=False)
    pd.DataFrame({"source": [1], "target": [2]}).to_csv(graph / "edges.csv", index=False)
    assert profile.infer_modality(audio, skip_columns=("id",)) == "audio"
    assert profile.infer_modality(graph, skip_columns=("id",)) == "graph"
