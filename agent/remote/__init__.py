"""Remote sessions on the endpoint: consent, banner, policy, screen capture, input injection."""
