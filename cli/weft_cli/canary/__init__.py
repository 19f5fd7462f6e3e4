"""The demo's canary rollout: pure judgement of each step (steps), and the loop that
reads traffic, shifts weights and shows them live (rollout)."""
