// Data parallelism across processes, GPUs and machines, with torch.distributed's shape: one
// process per device, started by a launcher (mpirun, mpiexec, srun), MPI for host data and for
// bootstrapping, and each backend's own transport for tensors (csrc/common/backend_comm.h: MPI
// on cpu memory, NCCL on GPUs, NCCL emulated over MPI under cuda-emu).
//
//   const { rank, worldSize } = ff.distributed.init();   // from the launcher's environment
//   ff.distributed.allReduce(t, 'avg');                   // in place, on every rank
//   const model = new ff.nn.DistributedDataParallel(net); // gradients averaged during backward
//
// Without a launcher (a plain `node` run) init() gives rank 0 of 1 and every collective returns
// its input: the same script runs both ways, and MPI is never loaded. Every collective must be
// called by every rank, in the same order. One that waits longer than the timeout
// (FOURIERFORMER_DIST_TIMEOUT, default 600 s) ends the job with a report naming the ranks that
// did not join it (csrc/mpi/faults.h).
import { getDefaultDevice } from '../device';
import { Backend, checkDevice, Device, usableBackends, backendFor } from '../native';
import { shapeString } from '../shape';
import { checkTensor, Tensor, zeros } from '../tensor';
import { defaultTimeout, launchedByMpi } from './launcher';
import { MpiAddon, mpiAddon, ReduceOp } from './mpi';
import { findNccl, ncclSearchDirs } from './nccl';

export type { ReduceOp } from './mpi';

export interface InitOptions {
  /** Seconds a collective may wait for every rank (default FOURIERFORMER_DIST_TIMEOUT, else 600). */
  timeout?: number;
  /**
   * The device this process trains on (default: the default device). 'cuda' makes each rank use
   * the GPU of its local rank (CUDA_VISIBLE_DEVICES is narrowed to it before CUDA starts), and
   * creates its NCCL communicator now.
   */
  device?: Device;
}

export interface WorldInfo {
  rank: number;
  worldSize: number;
  /** The rank among the processes of this machine, and their number. */
  localRank: number;
  localWorldSize: number;
  /** Per rank: host name and process id (for messages). */
  hosts: string[];
  pids: number[];
  /** The MPI library ('' without one). */
  library: string;
  timeout: number;
}

interface State {
  world: WorldInfo;
  mpi: MpiAddon | null;
  attached: Set<Device>;
}

let state: State | null = null;

const REDUCE_OPS: readonly ReduceOp[] = ['sum', 'avg', 'max', 'min'];

function checkOp(op: unknown): ReduceOp {
  if (!REDUCE_OPS.includes(op as ReduceOp))
    throw new Error(`op: expected 'sum', 'avg', 'max' or 'min', got ${JSON.stringify(op)}`);
  return op as ReduceOp;
}

/**
 * Makes each rank use the GPU of its local rank, as llm.c does: narrows CUDA_VISIBLE_DEVICES to
 * that GPU before the CUDA runtime starts (a launcher that already gave each rank one GPU is
 * left alone).
 */
function bindGpu(w: WorldInfo): void {
  if (usableBackends().some((b) => b.backend === 'cuda')) {
    throw new Error(
      'distributed.init: the cuda device was used before init(); call init() first, so that each rank picks its own GPU',
    );
  }
  const visible = process.env.CUDA_VISIBLE_DEVICES?.split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (visible !== undefined && visible.length === 1) return;
  if (visible !== undefined && visible.length < w.localWorldSize) {
    throw new Error(
      `CUDA_VISIBLE_DEVICES lists ${visible.length} GPUs for the ${w.localWorldSize} ranks on ${w.hosts[w.rank]}; give each rank a GPU`,
    );
  }
  process.env.CUDA_VISIBLE_DEVICES = visible !== undefined ? visible[w.localRank] : String(w.localRank);
}

/**
 * Joins the job: starts MPI when a launcher started several ranks (else one rank alone), picks
 * the GPU of a cuda rank and binds the device's backend to the communicator. Returns the world;
 * a second call returns it again.
 */
export function init(opts: InitOptions = {}): WorldInfo {
  if (opts === null || typeof opts !== 'object') throw new Error('opts: expected { timeout?, device? }');
  const device = checkDevice(opts.device ?? getDefaultDevice(), 'opts.device');
  if (state !== null) return state.world;
  const timeout = opts.timeout ?? defaultTimeout();
  if (!(typeof timeout === 'number' && timeout > 0))
    throw new Error(`opts.timeout: expected a number of seconds > 0, got ${String(timeout)}`);
  if (!launchedByMpi()) {
    state = {
      world: {
        rank: 0,
        worldSize: 1,
        localRank: 0,
        localWorldSize: 1,
        hosts: [],
        pids: [process.pid],
        library: '',
        timeout,
      },
      mpi: null,
      attached: new Set(),
    };
    return state.world;
  }
  const mpi = mpiAddon();
  const world = { ...mpi.init(timeout) };
  state = { world, mpi, attached: new Set() };
  // A rank that exits cleanly leaves MPI; one that exits with an error ends the whole job, so
  // that no rank waits for it until the timeout.
  process.on('exit', (code) => {
    if (code === 0) mpi.finalize();
    else mpi.abort(code, '');
  });
  if (device === 'cuda') bindGpu(world);
  attach(device);
  return world;
}

export function isInitialized(): boolean {
  return state !== null;
}

/** This process's rank (0 before init). */
export function rank(): number {
  return state?.world.rank ?? 0;
}

/** The number of ranks (1 before init). */
export function worldSize(): number {
  return state?.world.worldSize ?? 1;
}

export function localRank(): number {
  return state?.world.localRank ?? 0;
}

export function localWorldSize(): number {
  return state?.world.localWorldSize ?? 1;
}

/** The world (init() must have run). */
export function world(): WorldInfo {
  if (state === null) throw new Error('distributed: call distributed.init() first');
  return state.world;
}

function mpi(what: string): MpiAddon {
  if (state === null) throw new Error(`${what}: call distributed.init() first`);
  if (state.mpi === null) throw new Error(`${what}: no MPI in a single-process run`);
  return state.mpi;
}

/** Binds a device's backend to the communicator (once; on cuda, every rank creates NCCL's communicator together). */
function attach(device: Device): Backend {
  const backend = backendFor(device);
  if (state === null || state.mpi === null || state.attached.has(device)) return backend;
  const nccl = device === 'cuda' ? findNccl() : '';
  try {
    backend.commAttach(state.mpi.commApi(), nccl);
  } catch (e) {
    const looked = device === 'cuda' && nccl === '' ? `; no libnccl.so.2 in:\n  ${ncclSearchDirs().join('\n  ')}` : '';
    throw new Error(`distributed: rank ${state.world.rank}: ${(e as Error).message}${looked}`, { cause: e });
  }
  state.attached.add(device);
  return backend;
}

/** A collective queued on a backend; wait() returns when it finished on this rank. */
export interface Work {
  wait(): void;
}

const DONE: Work = { wait: () => undefined };

/** @internal Queues an in-place all-reduce of t (lib/nn/distributed-data-parallel.ts). */
export function startAllReduce(t: Tensor, op: ReduceOp, what: string): Work {
  if (worldSize() === 1) return DONE;
  const b = attach(t.device);
  const handle = b.commAllReduce(t.storage(), op, what);
  return { wait: () => b.commWait(handle) };
}

/** @internal Queues an in-place all-gather: t holds worldSize equal blocks, block r <- rank r's. */
export function startAllGather(t: Tensor, what: string): Work {
  if (worldSize() === 1) return DONE;
  const b = attach(t.device);
  const handle = b.commAllGather(t.storage(), what);
  return { wait: () => b.commWait(handle) };
}

/** t <- op over every rank's t (in place; 'avg' divides the sum by the world size). Returns t. */
export function allReduce(t: Tensor, op: ReduceOp = 'sum'): Tensor {
  checkTensor(t, 'tensor');
  startAllReduce(t, checkOp(op), `all-reduce (${op}) of a tensor ${shapeString(t.shape)}`).wait();
  return t;
}

/** t <- rank root's t (in place). Returns t. */
export function broadcast(t: Tensor, root = 0): Tensor {
  checkTensor(t, 'tensor');
  if (!Number.isInteger(root) || root < 0 || root >= worldSize())
    throw new Error(`root: expected a rank from 0 to ${worldSize() - 1}, got ${String(root)}`);
  if (worldSize() === 1) return t;
  const b = attach(t.device);
  b.commWait(b.commBroadcast(t.storage(), root, `broadcast from rank ${root} of a tensor ${shapeString(t.shape)}`));
  return t;
}

/** Every rank's t, stacked: a new tensor [worldSize, ...t.shape] on t's device. */
export function allGather(t: Tensor): Tensor {
  checkTensor(t, 'tensor');
  const out = zeros([worldSize(), ...t.shape], { device: t.device });
  out.backend.packInto(out.storage(), [t.storage()], rank() * t.size);
  startAllGather(out, `all-gather of a tensor ${shapeString(t.shape)}`).wait();
  return out;
}

/** Returns when every rank has called barrier(). */
export function barrier(): void {
  if (worldSize() > 1) mpi('barrier').barrier('barrier');
}

/** The op over every rank's numbers (host values, float64), element by element. */
export function allReduceNumbers(
  values: readonly number[],
  op: ReduceOp = 'sum',
  what = 'all-reduce of numbers',
): number[] {
  if (!Array.isArray(values) || values.some((v) => typeof v !== 'number'))
    throw new Error('values: expected an array of numbers');
  checkOp(op);
  const data = Float64Array.from(values);
  if (worldSize() > 1) mpi('allReduceNumbers').allReduceF64(data, op, what);
  return [...data];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Rank root's value (anything JSON can hold), on every rank (torch's broadcast_object_list). */
export function broadcastObject<T>(value: T, root = 0): T {
  if (worldSize() === 1) return value;
  const m = mpi('broadcastObject');
  const bytes = rank() === root ? encoder.encode(JSON.stringify(value ?? null)) : new Uint8Array(0);
  const [length] = allReduceNumbers(
    [rank() === root ? bytes.length : 0],
    'sum',
    `broadcast from rank ${root}: its length`,
  );
  const data = rank() === root ? bytes : new Uint8Array(length);
  m.broadcastBytes(data, root, `broadcast of an object from rank ${root}`);
  return JSON.parse(decoder.decode(data)) as T;
}

/** Every rank's value (anything JSON can hold), in rank order (torch's all_gather_object). */
export function allGatherObject<T>(value: T): T[] {
  if (worldSize() === 1) return [value];
  const m = mpi('allGatherObject');
  const mine = encoder.encode(JSON.stringify(value ?? null));
  const [longest] = allReduceNumbers([mine.length], 'max', 'all-gather of objects: their length');
  const n = worldSize(),
    block = longest + 8;
  const data = new Uint8Array(n * block);
  const view = new DataView(data.buffer);
  view.setFloat64(rank() * block, mine.length, true);
  data.set(mine, rank() * block + 8);
  m.allGatherBytes(data, 'all-gather of objects');
  return Array.from({ length: n }, (_, r) => {
    const len = view.getFloat64(r * block, true);
    return JSON.parse(decoder.decode(data.subarray(r * block + 8, r * block + 8 + len))) as T;
  });
}

/** Where the training loop is ("fourier step 7"): other ranks' fault reports quote it. */
export function setStatus(marker: string): void {
  if (state?.mpi) state.mpi.setMarker(String(marker));
}

/** What carries a device's tensors between ranks ("MPI (host memory)", "NCCL 2.27.3 (...)"). */
export function transport(device: Device): string {
  if (worldSize() === 1) return 'none (one rank)';
  return attach(checkDevice(device)).commDescribe();
}

/** Time the MPI thread spent in collectives, their count and bytes since the last reset. */
export function commCounters(reset = false): { busySeconds: number; collectives: number; bytes: number } {
  if (state?.mpi == null) return { busySeconds: 0, collectives: 0, bytes: 0 };
  return state.mpi.counters(reset);
}

/** Ends every rank now, printing message first (MPI_Abort); a single process exits. */
export function abort(code = 1, message = ''): never {
  if (state?.mpi) return state.mpi.abort(code, message);
  if (message) process.stderr.write(message + '\n');
  process.exit(code);
}

/** Leaves the job (MPI_Finalize); collectives fail afterwards (torch's destroy_process_group). */
export function destroy(): void {
  state?.mpi?.finalize();
}
