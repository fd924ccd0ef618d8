// Which launcher started this process, from its environment: Open MPI's mpirun, MPICH's or Intel
// MPI's mpiexec (PMI), SLURM's srun (PMIx or PMI2), or nothing (one process). MPI itself then
// says the rank and world size; this only decides whether to start MPI at all, so that a plain
// `node` run never needs it.

/**
 * Whether a launcher started this process as one of several ranks: Open MPI's
 * OMPI_COMM_WORLD_SIZE or PMI's PMI_SIZE above 1, or a PMIx launch (PMIX_RANK; srun --mpi=pmix)
 * whose size only MPI knows. FOURIERFORMER_DISTRIBUTED=0 or 1 overrides.
 */
export function launchedByMpi(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.FOURIERFORMER_DISTRIBUTED === '0') return false;
  if (env.FOURIERFORMER_DISTRIBUTED === '1') return true;
  for (const name of ['OMPI_COMM_WORLD_SIZE', 'PMI_SIZE']) {
    if (env[name] !== undefined) return Number(env[name]) > 1;
  }
  return env.PMIX_RANK !== undefined;
}

/** The timeout of collectives, in seconds: FOURIERFORMER_DIST_TIMEOUT, else 600 (PyTorch's NCCL default). */
export function defaultTimeout(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.FOURIERFORMER_DIST_TIMEOUT;
  if (v === undefined || v === '') return 600;
  const n = Number(v);
  if (!(n > 0))
    throw new Error(`FOURIERFORMER_DIST_TIMEOUT: expected a number of seconds > 0, got ${JSON.stringify(v)}`);
  return n;
}
