/* The runtime side of clang's setjmp/longjmp lowering for WebAssembly (`-mllvm
 * -wasm-enable-sjlj`, the LLVM 14 interface). The compiler rewrites each function that calls
 * setjmp to keep a table of its setjmp points: `saveSetjmp` records one and gives the buffer a
 * fresh id, `testSetjmp` finds whether a longjmp's id belongs to this function, and
 * `__wasm_longjmp` throws the WebAssembly exception tagged `__c_longjmp` that those functions
 * catch. Compiled with exception handling enabled; only the JPEG decoder uses it. */

#include <stddef.h>
#include <stdint.h>

void *realloc(void *ptr, size_t size);

typedef struct {
  uint32_t id;
  uint32_t label;
} entry;

static uint32_t temp_ret;
static uint32_t next_id;

uint32_t getTempRet0(void) { return temp_ret; }

/* `table` has room for `size` entries plus a terminating one; the list ends at id 0. */
entry *saveSetjmp(uint32_t *env, uint32_t label, entry *table, uint32_t size) {
  uint32_t id = ++next_id;
  if (id == 0) id = ++next_id;
  *env = id;
  for (uint32_t i = 0; i < size; i++) {
    if (table[i].id == 0) {
      table[i].id = id;
      table[i].label = label;
      table[i + 1].id = 0;
      temp_ret = size;
      return table;
    }
  }
  /* Full: double it. Out of memory ends the program, as a failed malloc in the caller's
   * own table setup would. */
  uint32_t grown = size * 2;
  entry *bigger = realloc(table, sizeof(entry) * ((size_t)grown + 1));
  if (!bigger) __builtin_trap();
  bigger[size].id = id;
  bigger[size].label = label;
  bigger[size + 1].id = 0;
  temp_ret = grown;
  return bigger;
}

uint32_t testSetjmp(uint32_t id, const entry *table, uint32_t size) {
  for (uint32_t i = 0; i < size && table[i].id != 0; i++) {
    if (table[i].id == id) return table[i].label;
  }
  return 0;
}

static struct {
  void *env;
  int val;
} longjmp_args;

_Noreturn void __wasm_longjmp(void *env, int val) {
  longjmp_args.env = env;
  longjmp_args.val = val == 0 ? 1 : val;
  __builtin_wasm_throw(1, &longjmp_args);
}
