// Compiled as a file of proxy/pooling: including a header of proxy/io, a layer below, is
// allowed. The control for io_includes_pooling.cpp: the same command line compiles.
#include "proxy/io/loop.h"
