"""Interventions as tables: attention windows, span removal, steering, logit lens, decoder LM."""
