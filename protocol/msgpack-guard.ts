/**
 * A structural pre-check of untrusted msgpack bytes, run before msgpackr sees them. msgpackr recurses
 * per nesting level and trusts length headers, so hostile bytes could overflow the stack, make it
 * allocate from a header announcing billions of entries, or build objects from extension types.
 * This walk is iterative, allocates nothing per item and rejects all of that in one pass.
 */
export interface GuardLimits {
  readonly maxDepth: number;
  /** Total array elements plus map entries in the whole frame. */
  readonly maxItems: number;
  readonly maxStringBytes: number;
}

/** Returns null when the bytes hold exactly one msgpack value within the limits, else why not. */
export function checkMsgpack(bytes: Uint8Array, limits: GuardLimits): string | null {
  const end = bytes.length;
  // pending[d] = values still to read at depth d (maps count 2 per entry).
  const pending = new Uint32Array(limits.maxDepth + 2);
  let depth = 0;
  pending[0] = 1;
  let pos = 0;
  let items = 0;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);

  while (depth >= 0) {
    if (pending[depth] === 0) {
      depth--;
      continue;
    }
    pending[depth]!--;
    if (pos >= end) return 'truncated';
    const b = bytes[pos++]!;
    let skip = 0;
    let children = -1; // values inside a container
    if (b <= 0x7f || b >= 0xe0) {
      // positive or negative fixint
    } else if (b <= 0x8f) children = (b & 0x0f) * 2;
    else if (b <= 0x9f) children = b & 0x0f;
    else if (b <= 0xbf) skip = b & 0x1f;
    else {
      switch (b) {
        case 0xc0: case 0xc2: case 0xc3: break; // nil, false, true
        case 0xca: skip = 4; break; // float32
        case 0xcb: skip = 8; break; // float64
        case 0xcc: case 0xd0: skip = 1; break;
        case 0xcd: case 0xd1: skip = 2; break;
        case 0xce: case 0xd2: skip = 4; break;
        case 0xcf: case 0xd3: skip = 8; break;
        case 0xd9: case 0xc4: // str8, bin8
          if (pos + 1 > end) return 'truncated';
          skip = bytes[pos]!; pos += 1; break;
        case 0xda: case 0xc5:
          if (pos + 2 > end) return 'truncated';
          skip = view.getUint16(pos); pos += 2; break;
        case 0xdb: case 0xc6:
          if (pos + 4 > end) return 'truncated';
          skip = view.getUint32(pos); pos += 4; break;
        case 0xdc:
          if (pos + 2 > end) return 'truncated';
          children = view.getUint16(pos); pos += 2; break;
        case 0xdd:
          if (pos + 4 > end) return 'truncated';
          children = view.getUint32(pos); pos += 4; break;
        case 0xde:
          if (pos + 2 > end) return 'truncated';
          children = view.getUint16(pos) * 2; pos += 2; break;
        case 0xdf:
          if (pos + 4 > end) return 'truncated';
          children = view.getUint32(pos) * 2; pos += 4; break;
        default:
          return b === 0xc1 ? 'reserved byte 0xc1' : 'extension types are not allowed';
      }
    }
    if (skip > 0) {
      if (skip > limits.maxStringBytes && !(b >= 0xca && b <= 0xd3)) return 'string or binary too long';
      if (pos + skip > end) return 'truncated';
      pos += skip;
    }
    if (children >= 0) {
      items += children;
      if (items > limits.maxItems) return 'too many items';
      // Every value takes at least one byte: a header announcing more than the bytes left is a lie.
      if (children > end - pos) return 'truncated';
      if (children > 0) {
        if (depth + 1 > limits.maxDepth) return 'nested too deep';
        depth++;
        pending[depth] = children;
      }
    }
  }
  return pos === end ? null : 'trailing bytes';
}
