"""Evaluation: run a policy over a task set, summarise it MLE-bench style, and plot runs."""
