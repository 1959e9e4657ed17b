"""Run observability: metrics to JSONL and TensorBoard, logging into the run's workdir."""
