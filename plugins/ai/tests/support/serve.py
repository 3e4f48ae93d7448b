"""Serves the SmolLM2-135M test model with PyPI's xllamacpp (llama.cpp's server): an
OpenAI-compatible API on 127.0.0.1 with one thread. Prints `listening <port>` when ready and
exits when its standard input closes (the test process ended)."""

import os
import sys
import threading

import xllamacpp

model, port = sys.argv[1], int(sys.argv[2])
params = xllamacpp.CommonParams()
params.model.path = model
params.hostnames = ["127.0.0.1"]
params.port = port
params.cpuparams.n_threads = 1
params.cpuparams_batch.n_threads = 1
params.n_ctx = 2048
params.n_parallel = 2
server = xllamacpp.Server(params)
print("listening", port, flush=True)
sys.stdin.read()
os._exit(0)
