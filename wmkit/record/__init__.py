"""What a run reports as it trains: the metrics logger and its sinks, plots, videos and progress
bars."""
