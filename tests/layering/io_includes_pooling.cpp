// Compiled as a file of proxy/io (only io and the layers below it defined): including a
// header of proxy/pooling, a layer above, must not compile. ctest expects the failure.
#include "proxy/pooling/pool_shard.h"
