"""Remote sessions: the broker (who may ask, what was granted) and the relay."""
