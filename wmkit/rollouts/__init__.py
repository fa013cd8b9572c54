"""Episodes in real environments: environments, the agent, policies, building components, workers
and the executors that run them in parallel."""
