"""Run observability: metrics to JSONL and TensorBoard; the console and the log file."""
