# Trains the R wine-quality model (the seed's): randomForest(quality ~ ., ntree=30, nodesize=4,
# mtry=8) on the 11 features, with quality as a factor. Saves classifier.Rda beside this file.
# Run from this directory: Rscript train.R (make demo / make test do it when it is missing).
suppressPackageStartupMessages(library(randomForest))

if (!file.exists("winequality-red.csv")) stop("run make_data.py first: winequality-red.csv is missing")
df <- read.csv("winequality-red.csv", sep = ";")
df$quality <- factor(df$quality)
cols <- names(df)[1:11]

set.seed(20171)
started <- Sys.time()
clf <- randomForest(quality ~ ., data = df[, c(cols, "quality")], ntree = 30, nodesize = 4,
                    mtry = 8)
cat(sprintf("training time: %.2f s, OOB error: %.3f\n",
            as.numeric(Sys.time() - started, units = "secs"), clf$err.rate[clf$ntree, "OOB"]))
save(clf, cols, file = "classifier.Rda")
