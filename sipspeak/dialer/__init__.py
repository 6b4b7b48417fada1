"""Campaigns, pacing (unlimited / progressive / predictive), ACD queue and agent states."""
