# The R wine model behind plumber (R's usual way to serve a model), for the side-by-side
# benchmark: the same predict.R, sourced once, behind one POST route taking the same body.
#   Rscript bench/plumber/serve.R PORT
#* @post /predict
#* @serializer unboxedJSON
function(req) {
  body <- jsonlite::fromJSON(req$postBody)  # {"parameters": [[11 numbers]]}: a 1 x 11 matrix
  list(result = predictQuality(as.numeric(body$parameters[1, ])))
}
