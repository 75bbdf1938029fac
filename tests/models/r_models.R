# R functions for the R tests.
loads <- 0
loads <- loads + 1
# Each run of this script notes the process that ran it, when the test asks (LOADS_FILE).
if (nzchar(Sys.getenv("LOADS_FILE"))) cat(Sys.getpid(), "\n", file = Sys.getenv("LOADS_FILE"),
                                          append = TRUE)

add <- function(x, y = 1) x + y
describe <- function(x) list(class = class(x), length = length(x), value = x)
echo <- function(...) list(...)
named <- function(a, b) paste(a, b)
boom <- function() stop("x must be positive")
warns <- function(x) { warning("careful with ", x); x * 2 }
frame <- function() data.frame(a = c(1.5, NA), b = c("x", "y"), f = factor(c("lo", "hi")),
                                stringsAsFactors = FALSE)
matrix23 <- function() matrix(1:6, nrow = 2)
special <- function() list(na = NA, nan = NaN, inf = Inf, ninf = -Inf, null = NULL,
                           vec = c(1, NA, NaN, Inf), empty = character(0), int_na = NA_integer_)
factor1 <- function() factor("b", levels = c("a", "b"))
closure <- function() function(x) x
env_value <- function() Sys.getenv("MODEL_SETTING")
load_count <- function() list(pid = Sys.getpid(), loads = loads)
fail_or_pid <- function(crash = FALSE) if (crash) stop("x must be positive") else Sys.getpid()
whoami <- function(x) list(pid = Sys.getpid(), x = x)

# Batched: `values` holds one value per call of the batch.
sizes <- function(values) lapply(values, function(v) list(value = v, batch = length(values)))

# Sleeps: for the timeout test.
nap <- function(seconds) { Sys.sleep(seconds); Sys.getpid() }
