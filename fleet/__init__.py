"""The fleet (server side): enrolment, per-device credentials, signed releases, rollouts."""
