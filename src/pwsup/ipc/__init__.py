"""Messages between pwsup processes and the channel that carries them."""
