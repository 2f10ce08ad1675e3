"""Vector code numba does not write by itself, as numba intrinsics built from LLVM IR.

`block_hits` tests a packet against a block of rows with one vector compare per field (numba's
loop over the rows stayed scalar: about 15 instructions per row where this takes 20 per block);
`trailing_zeros(x)` is the index of the lowest set bit of a nonzero unsigned integer (one
instruction), for walking the hits of its bit mask; `prefetch(address)` asks for a cache
line ahead of use, so that random probes into a large hash table overlap their misses. The IR
is written with llvmlite, numba's code generator; LLVM picks the vector instructions the
processor has (AVX-512, AVX2 or SSE).
"""
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def trailing_zeros(typingctx, x):
    """The number of trailing zero bits of an unsigned integer (undefined for zero)."""
    if not (isinstance(x, types.Integer) and not x.signed):
        return None

    def codegen(context, builder, signature, args):
        width = signature.args[0].bitwidth
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.IntType(width), [ir.IntType(width), ir.IntType(1)]), f"llvm.cttz.i{width}")
        return builder.call(function, [args[0], ir.IntType(1)(1)])

    return x(x), codegen


BLOCK_LANES = 8


@intrinsic
def block_hits(typingctx, words, base, peer, port, protocol):
    """The rows of a scan block (kernels.evaluate's layout, at words[base:base + 4 * BLOCK_LANES])
    that a packet passes, as a bit mask: one vector compare per field instead of a loop over rows.

    Field by field, BLOCK_LANES words each: peer start, peer span, port start | span << 16,
    protocol start | span << 8 | flags << 16 | 1 << 24 for a real row. A value passes a range when
    value - start <= span, unsigned."""
    if not (isinstance(words, types.Array) and words.dtype == types.uint32 and words.ndim == 1):
        return None

    def codegen(context, builder, signature, args):
        words_type = signature.args[0]
        arr = context.make_array(words_type)(context, builder, args[0])
        i32 = ir.IntType(32)
        vector = ir.VectorType(i32, BLOCK_LANES)
        start = context.cast(builder, args[1], signature.args[1], types.intp)

        def field(k):
            index = builder.add(start, ir.Constant(start.type, k * BLOCK_LANES))
            pointer = cgutils.get_item_pointer(context, builder, words_type, arr, [index], wraparound=False)
            return builder.load(builder.bitcast(pointer, vector.as_pointer()), align=4)

        def splat(k):
            value = context.cast(builder, args[k], signature.args[k], types.uint32)
            undef = ir.Constant(vector, ir.Undefined)
            return builder.shuffle_vector(builder.insert_element(undef, value, i32(0)), undef,
                                          ir.Constant(vector, [0] * BLOCK_LANES))

        def const(value):
            return ir.Constant(vector, [value] * BLOCK_LANES)

        def within(value, lo, span):
            return builder.icmp_unsigned("<=", builder.sub(value, lo), span)

        peer_start, peer_span, ports, other = field(0), field(1), field(2), field(3)
        ok = builder.and_(
            builder.and_(within(splat(2), peer_start, peer_span),
                         within(splat(3), builder.and_(ports, const(0xFFFF)), builder.lshr(ports, const(16)))),
            builder.and_(within(splat(4), builder.and_(other, const(0xFF)), builder.and_(builder.lshr(other, const(8)), const(0xFF))),
                         builder.icmp_unsigned(">=", other, const(1 << 24))))
        return builder.zext(builder.bitcast(ok, ir.IntType(BLOCK_LANES)), i32)

    return types.uint32(words, base, peer, port, protocol), codegen


@intrinsic
def prefetch(typingctx, address):
    """Ask for the cache line at `address` (an integer, e.g. from `array.ctypes.data`) to be loaded, without
    waiting for it (a hint: no effect on results). Random probes into a large table overlap their memory
    misses when issued a few records ahead. It takes an address, not the array: numba reference-counts an
    array handed to a function, two atomic operations that cost more than the hint saves."""
    if not isinstance(address, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), "llvm.prefetch.p0i8")
        # read access, high temporal locality, data cache
        builder.call(function, [builder.inttoptr(args[0], i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.none(address), codegen
