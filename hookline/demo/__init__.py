"""`hookline demo` and the local stand-ins of every channel's peer (`peers`), which the tests also
use. Needs the `demo` extra (`pip install 'hookline[demo]'`); nothing else in hookline imports
it."""
