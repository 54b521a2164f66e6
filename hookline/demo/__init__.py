"""`hookline demo`: hookline and a local stand-in for every channel's peer, on this machine."""
