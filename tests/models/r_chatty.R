# An R model that writes to the console: for the worker-log tests.
talkR <- function(word) {
  message(paste("r message", word))
  cat(paste("r cat", word, "\n"))
  warning(paste("r warning", word))
  word
}
