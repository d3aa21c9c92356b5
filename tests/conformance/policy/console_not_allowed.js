typeof console
