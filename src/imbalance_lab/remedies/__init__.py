"""One module per remedy axis: sampling, weighting, losses, bias (output-bias init), decision."""
