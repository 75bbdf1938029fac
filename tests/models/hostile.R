# R functions for the hardening tests (issue 15): nesting both ways, and who the worker is.
take <- function(x) Sys.getpid()
nest <- function(depth) { x <- list(1); for (i in seq_len(depth)) x <- list(x); x }
whoami <- function() Sys.getpid()
