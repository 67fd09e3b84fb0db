"""`-j N` for capture files: N worker processes, one writer, one output.

- shard: which worker follows which connection (the 4-tuple hash's share);
- worker: a worker's loop (reads the whole file, follows its share);
- ids: session ids in single-process order;
- jobs: the writer (merges the workers' records) and the processes;
- miruo_job, tcpeek_job: each tool's side of the workers and the writer.
"""
