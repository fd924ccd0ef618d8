#!/usr/bin/env python3
"""SASS instructions per (pair, feature) in the inner loops of the Fourier attention kernels.

    python3 scripts/count-sass.py [--arch 90] [--groups 2,4] [--source csrc/cuda/fourier_attention.cu]
                                  [--json out.json] [--fetch-tools]

Compiles the source to a cubin with the cuda addon's flags (nvcc -O3 -std=c++20
--expt-relaxed-constexpr, one arch), disassembles it, and for each kernel below finds its pair
loop: the innermost loop that reads the streamed tiles (LDS.128). A pair (i, j) costs a lane a
fixed number of LDS.128 (two per 8-float row: forward and dq read k and v, dk/dv reads q, dout
and out), so pairs per iteration = LDS.128 / that number (the compiler may unroll). Per lane and
pair there are 8 features, so

    instructions per (pair, feature) = instructions on the loop's common path / (pairs * 8)

The common path is the loop's code laid out between its head and its back branch, less (a)
nested loops (sinf's Payne-Hanek reduction, for |x| > 105615) and (b) any region a forward
branch skips that holds a nested loop or a CALL (the rest of such a slow path). Both sides of an
if/else laid out inline are counted: a warp whose lanes disagree runs both. Regions placed out of
line (after the loop: __builtin_expect's unlikely paths, the bound check's general path when it
has its own loop) are not in the count; each such loop is listed on its own line.
MUFU (special-function unit: RCP, EX2, LG2, SIN, COS) and divisions (MUFU.RCP: every float
division or reciprocal starts from one, its refinement and FCHK follow) are counted apart, on the
same common path.

The disassembler: cuobjdump or nvdisasm from PATH, $CUDA_HOME/bin or /usr/local/cuda/bin, or
$NVDISASM. The pip wheels of CUDA 13 ship neither; --fetch-tools downloads Debian's
nvidia-cuda-toolkit (non-free, CUDA 11.8; ~84 MB) into ~/.cache/fourierformer/sass-tools with apt
and a private sources list, and uses its nvdisasm. A disassembler older than the cubin's ELF ABI
(CUDA 13 writes ABI 8, sm in bits 8-15 of e_flags; 11.8 reads ABI 7) is given a copy with the
header rewritten to the old layout: the instructions are the same bits. Without any
disassembler the script counts PTX instructions instead (nvcc -ptx) and says so: PTX is not
what runs (ptxas schedules, unrolls and expands it).
"""
import argparse
import glob
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
CACHE = os.path.expanduser('~/.cache/fourierformer/sass-tools')

# kernel name pattern -> (label, LDS.128 per pair)
KERNELS = [
    (r'fourier_attention_forward_kernelILi{G}ELb0E', 'forward', 4),
    (r'fourier_attention_forward_kernelILi{G}ELb1E', 'forward stable', 4),
    (r'fourier_attention_backward_dq_kernelILi{G}E', 'dq', 4),
    (r'fourier_attention_backward_dkdv_kernelILi{G}E', 'dk/dv', 6),
]


def find_tool(names):
    env = os.environ.get('NVDISASM')
    if env and os.access(env, os.X_OK):
        return env
    dirs = os.environ.get('PATH', '').split(os.pathsep)
    for base in (os.environ.get('CUDA_HOME'), '/usr/local/cuda'):
        if base:
            dirs.append(os.path.join(base, 'bin'))
    dirs.append(os.path.join(CACHE, 'usr', 'bin'))
    for name in names:
        for d in dirs:
            p = os.path.join(d, name)
            if os.access(p, os.X_OK):
                return p
    return None


def fetch_tools():
    """Debian's nvidia-cuda-toolkit .deb, unpacked (not installed) into CACHE."""
    os.makedirs(CACHE, exist_ok=True)
    apt = os.path.join(CACHE, 'apt')
    for d in ('lists/partial', 'archives/partial', 'cache'):
        os.makedirs(os.path.join(apt, d), exist_ok=True)
    src = os.path.join(apt, 'sources.list')
    with open(src, 'w') as f:
        f.write('deb http://deb.debian.org/debian bookworm main contrib non-free\n')
    opts = ['-o', f'Dir::Etc::sourcelist={src}', '-o', 'Dir::Etc::sourceparts=-',
            '-o', f'Dir::State::Lists={apt}/lists', '-o', f'Dir::Cache={apt}/cache',
            '-o', f'Dir::Cache::Archives={apt}/archives']
    subprocess.run(['apt-get', *opts, 'update'], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(['apt-get', *opts, 'download', 'nvidia-cuda-toolkit'], check=True, cwd=apt)
    deb = sorted(glob.glob(os.path.join(apt, 'nvidia-cuda-toolkit_*.deb')))[-1]
    subprocess.run(['dpkg-deb', '-x', deb, CACHE], check=True)
    os.remove(deb)


def nvcc_path():
    p = shutil.which('nvcc') or '/usr/local/cuda/bin/nvcc'
    if not os.access(p, os.X_OK):
        sys.exit('count-sass: no nvcc')
    return p


def compile_to(source, arch, kind, out):
    flags = ['-std=c++20', '-O3', '--expt-relaxed-constexpr', f'-arch=sm_{arch}']
    subprocess.run([nvcc_path(), *flags, f'-{kind}', '-o', out, os.path.join(ROOT, source)], check=True)


def old_abi_copy(cubin, out):
    """The cubin with its ELF header in the pre-CUDA-12.8 layout (ABI 7), for older disassemblers."""
    b = bytearray(open(cubin, 'rb').read())
    if b[8] >= 8:  # EI_ABIVERSION
        sm = (struct.unpack_from('<I', b, 48)[0] >> 8) & 0xff
        b[8] = 7
        struct.pack_into('<I', b, 48, (sm << 16) | 0x500 | sm)  # virtual sm, 64-bit, unified tex, sm
    open(out, 'wb').write(b)


def disassemble(tool, cubin, tmp):
    args = [tool, '-sass'] if tool.endswith('cuobjdump') else [tool, '-c']
    r = subprocess.run(args + [cubin], capture_output=True, text=True)
    if r.returncode != 0 or 'Elf file' in r.stderr or 'not supported' in r.stderr.lower() or 'removed' in r.stderr:
        patched = os.path.join(tmp, 'old-abi.cubin')
        old_abi_copy(cubin, patched)
        r = subprocess.run(args + [patched], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f'count-sass: {tool} failed: {r.stderr.strip()}')
    return r.stdout


def sass_functions(text):
    """{mangled name: [(opcode text)], labels {label: index}} from nvdisasm or cuobjdump output."""
    funcs = {}
    name = None
    for line in text.split('\n'):
        m = re.match(r'\s*(?:\.section\s+\.text\.|Function : )([\w$]+)', line)
        if m:
            name = m.group(1)
            funcs[name] = ([], {})
            continue
        if name is None:
            continue
        ins, labels = funcs[name]
        m = re.match(r'^\s*(\.L_x_\d+):', line)
        if m:
            labels[m.group(1)] = len(ins)
            continue
        m = re.match(r'\s*/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;', line)
        if m:
            ins.append((int(m.group(1), 16), m.group(2)))
    # cuobjdump names targets by address: map `(.L_x_N)` and plain addresses alike
    return funcs


def branch_target(text, ins, labels):
    m = re.search(r'`\((\.L_x_\d+)\)', text)
    if m:
        return labels.get(m.group(1))
    m = re.search(r'BRA\s+(?:\S+\s+)?0x([0-9a-f]+)', text)
    if m:
        addr = int(m.group(1), 16)
        for k, (a, _) in enumerate(ins):
            if a == addr:
                return k
    return None


PRED = r'(U?P[0-6T])'


def common_path(ins, head, back, excluded):
    """Indices of the loop body reachable from its head on the common path, in layout order:
    excluded instructions are skipped, an unconditional branch goes to its target only, and a
    conditional one to both sides, except where a warp vote rules a side out: a predicate
    written by VOTE.ANY (some lane needs a fallback) is false on the common path, and so is one
    set by a compare ANDed with it."""
    seen = set()
    todo = [(head, frozenset())]
    while todo:
        k, false = todo.pop()
        while head <= k <= back and k not in seen:
            if k in excluded:
                k += 1
                continue
            seen.add(k)
            text = ins[k][1]
            guard = re.match(r'@(!?)' + PRED + r'\s+(\S+)', text)
            op = guard.group(3) if guard else text.split()[0]
            body = text[guard.end():] if guard else text[len(op):]
            if op.startswith(('BRA', 'EXIT', 'RET')):
                target = branch_target(text, ins, {}) if op.startswith('BRA') else None
                known = guard is not None and guard.group(2) in false
                if guard is None or (known and guard.group(1) == '!'):  # always taken
                    k = target if target is not None else back + 1
                    continue
                if not known and target is not None:
                    todo.append((target, false))
                k += 1
                continue
            parts = body.split(',')
            dests = re.findall(PRED, parts[0])
            if op.split('.')[0].endswith('SETP') and len(parts) > 1:
                dests += re.findall(PRED, parts[1])
            dests = [d for d in dests if d not in ('PT', 'UPT')]
            if op.startswith(('VOTE.ANY', 'VOTEU.ANY')):
                false = false | set(dests)
            elif op.split('.')[0].endswith('SETP') and '.AND' in op and parts[-1].strip() in false:
                false = false | set(dests)
            elif dests:
                false = false - set(dests)
            k += 1
    return sorted(seen)


def analyse(ins, labels, lds_per_pair):
    """The pair loop's common path, and the out-of-line loops beside it."""
    loops = []  # (head, back-branch index)
    branches = []  # (index, target, conditional)
    for k, (_, t) in enumerate(ins):
        op = t.split()[1] if t.startswith('@') else t.split()[0]
        if not op.startswith('BRA'):
            continue
        target = branch_target(t, ins, labels)
        if target is None:
            continue
        if target <= k:
            loops.append((target, k))
        else:
            branches.append((k, target))
    def lds(a, b):
        return sum(1 for _, t in ins[a:b + 1] if re.search(r'\bLDS\.128\b', t))
    tile_loops = [lp for lp in loops if lds(*lp) > 0]
    if not tile_loops:
        return None
    # innermost loop that reads the tiles
    head, back = min(tile_loops, key=lambda lp: lp[1] - lp[0])
    excluded = set()
    nested = [lp for lp in loops if head <= lp[0] and lp[1] < back and lp != (head, back)]
    for a, b in nested:
        excluded.update(range(a, b + 1))
    # each slow part (a nested loop, a CALL) drops with the tightest region a branch skips around it
    inner = [(k + 1, t) for k, t in branches if head <= k < back and t <= back]
    slow = [(a, b) for a, b in nested] + [(i, i) for i in range(head, back) if 'CALL' in ins[i][1]]
    for a, b in slow:
        around = [r for r in inner if r[0] <= a and b < r[1]]
        if around:
            lo, hi = min(around, key=lambda r: r[1] - r[0])
            excluded.update(range(lo, hi))
    path = [ins[i][1] for i in common_path(ins, head, back, excluded)]
    pairs = lds(head, back) / lds_per_pair
    count = lambda pat: sum(1 for t in path if re.search(pat, t))
    others = [(a, b) for a, b in tile_loops if (a, b) != (head, back) and not (a <= head and back <= b)]
    return {
        'pairs_per_iteration': pairs,
        'instructions': len(path),
        'per_pair_feature': len(path) / (pairs * 8),
        'mufu': count(r'\bMUFU\.'),
        'divisions': count(r'\bMUFU\.RCP\b'),
        'static_loop_instructions': back - head + 1,
        'other_tile_loops': [{'instructions': b - a + 1, 'pairs': lds(a, b) / lds_per_pair,
                              'per_pair_feature': (b - a + 1) / (lds(a, b) / lds_per_pair * 8)}
                             for a, b in others],
    }


def ptx_counts(ptx_text, groups):
    """Fallback: PTX instructions in the pair loops (ld.shared.v4 marks them)."""
    out = []
    entries = re.split(r'\.entry\s+', ptx_text)[1:]
    for G in groups:
        for pat, label, lds_per_pair in KERNELS:
            pat = pat.format(G=G)
            body = next((e for e in entries if re.match(r'\w*' + pat, e)), None)
            if body is None:
                continue
            lines = [l.strip() for l in body.split('\n')]
            ins, labels = [], {}
            for l in lines:
                m = re.match(r'^(\$\w+):', l)
                if m:
                    labels[m.group(1)] = len(ins)
                elif l and not l.startswith(('//', '.', '{', '}', ')', '(')) and l.endswith(';'):
                    ins.append(l)
            best = None
            for k, t in enumerate(ins):
                m = re.search(r'\bbra(?:\.uni)?\s+(\$\w+)', t)
                if m and labels.get(m.group(1), k + 1) <= k:
                    a = labels[m.group(1)]
                    n_lds = sum(1 for x in ins[a:k + 1] if 'ld.shared.v4' in x)
                    if n_lds and (best is None or k - a < best[1] - best[0]):
                        best = (a, k, n_lds)
            if best:
                a, k, n_lds = best
                pairs = n_lds / lds_per_pair
                n = k - a + 1
                out.append({'G': G, 'kernel': label, 'instructions': n, 'pairs_per_iteration': pairs,
                            'per_pair_feature': n / (pairs * 8),
                            'divisions': sum(1 for x in ins[a:k + 1] if re.match(r'div\.(rn|full)', x)),
                            'mufu': sum(1 for x in ins[a:k + 1] if re.match(r'(ex2|lg2|rcp|sin|cos)\.approx', x))})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--arch', default='90')
    ap.add_argument('--groups', default='1,2,4,8', help='lane-group widths G (D <= 8G)')
    ap.add_argument('--source', default='csrc/cuda/fourier_attention.cu')
    ap.add_argument('--json', help='also write the rows here')
    ap.add_argument('--fetch-tools', action='store_true', help="download Debian's nvdisasm (see above)")
    args = ap.parse_args()
    groups = [int(g) for g in args.groups.split(',')]
    tool = find_tool(['cuobjdump', 'nvdisasm'])
    if tool is None and args.fetch_tools:
        fetch_tools()
        tool = find_tool(['cuobjdump', 'nvdisasm'])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        if tool is None:
            ptx = os.path.join(tmp, 'k.ptx')
            compile_to(args.source, args.arch, 'ptx', ptx)
            print(f'count-sass: no cuobjdump or nvdisasm (see --fetch-tools): counting PTX of {args.source}, '
                  'not SASS: PTX is what ptxas compiles, not what runs')
            rows = ptx_counts(open(ptx).read(), groups)
            source = 'ptx'
        else:
            cubin = os.path.join(tmp, 'k.cubin')
            compile_to(args.source, args.arch, 'cubin', cubin)
            funcs = sass_functions(disassemble(tool, cubin, tmp))
            source = f'sass ({os.path.basename(tool)})'
            for G in groups:
                for pat, label, lds_per_pair in KERNELS:
                    name = next((n for n in funcs if re.search(pat.format(G=G), n)), None)
                    if name is None:
                        continue
                    r = analyse(*funcs[name], lds_per_pair)
                    if r:
                        rows.append({'G': G, 'kernel': label, **r})
    print(f'{args.source}, sm_{args.arch}, {source}: per lane, a pair of rows (i, j) is 8 features')
    print(f"{'G':>2} {'kernel':15} {'pairs/iter':>10} {'instr':>6} {'per (pair,feature)':>18} {'MUFU':>5} {'div':>4}  out-of-line tile loops")
    for r in rows:
        extra = ', '.join(f"{o['instructions']} instr / {o['pairs']:g} pairs = {o['per_pair_feature']:.1f}"
                          for o in r.get('other_tile_loops', []))
        print(f"{r['G']:2} {r['kernel']:15} {r['pairs_per_iteration']:10g} {r['instructions']:6} "
              f"{r['per_pair_feature']:18.1f} {r['mufu']:5} {r['divisions']:4}  {extra}")
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'source': args.source, 'arch': args.arch, 'counted_from': source, 'rows': rows}, f, indent=1)


if __name__ == '__main__':
    main()
