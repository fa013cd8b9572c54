"""Episodes in a learned model: the batched dream rollout, where dreams start, a Memory as a
world model, imagination, dream films and the exploit guard."""
