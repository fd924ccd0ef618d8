// cuda backend: host threads. On a GPU the kernels run on the device and the calling thread only
// queues them on the stream: one host thread, whatever is set. The cuda-emu build runs the blocks
// on the emulator's workers, which set_num_threads bounds for launches from the calling thread.
#include "../common/backend.h"
#include "launch.h"

namespace ff::backend {

#if defined(FF_EMU)
int num_threads() { return emu::launch_threads(); }
void set_num_threads(int n) { emu::set_launch_threads(n); }
#else
int num_threads() { return 1; }
void set_num_threads(int) {}
#endif

}  // namespace ff::backend
