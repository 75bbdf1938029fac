# Fails while being sourced (the function below is defined, but never reached).
stop("cannot find the model file")
anything <- function() 1
