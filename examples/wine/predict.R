# The R wine-quality endpoint: the model is loaded once, when modelgate sources this script.
suppressPackageStartupMessages(library(randomForest))
load("classifier.Rda")  # clf, cols

# features: one wine (11 numbers in the data set's column order), or a list of wines.
# Returns the predicted quality as an integer (one per wine).
predictQuality <- function(features) {
  rows <- if (is.list(features)) do.call(rbind, lapply(features, as.numeric)) else
    matrix(as.numeric(features), nrow = 1)
  to_predict <- as.data.frame(rows)
  colnames(to_predict) <- cols
  as.integer(as.character(predict(clf, to_predict)))
}
