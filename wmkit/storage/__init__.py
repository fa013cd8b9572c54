"""What a run leaves on disk, written crash-safe: atomic files, episode shards, checkpoints, the
run directory, scores, replay, zoo entries."""
