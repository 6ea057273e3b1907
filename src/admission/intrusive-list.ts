/**
 * A doubly linked list whose links live on the elements themselves, so
 * append, pop-front and removal from the middle are O(1) and allocate nothing.
 * Admission needs removal from the middle (a client that disconnects or times
 * out while queued), which rules out a ring buffer; Array.shift is O(n).
 * An element may be in at most one list at a time.
 */
export interface ListNode<T> {
  prev: T | undefined;
  next: T | undefined;
  listed: boolean;
}

export class IntrusiveList<T extends ListNode<T>> {
  head: T | undefined = undefined;
  tail: T | undefined = undefined;
  size = 0;

  push(node: T): void {
    if (node.listed) throw new Error('node is already in a list');
    node.listed = true;
    node.prev = this.tail;
    node.next = undefined;
    if (this.tail === undefined) this.head = node;
    else this.tail.next = node;
    this.tail = node;
    this.size++;
  }

  /** Inserts `node` right after `ref`, or at the head when `ref` is undefined. */
  insertAfter(node: T, ref: T | undefined): void {
    if (ref === undefined ? this.head === undefined : ref === this.tail) {
      this.push(node);
      return;
    }
    if (node.listed) throw new Error('node is already in a list');
    node.listed = true;
    const next = ref === undefined ? this.head! : ref.next!;
    node.prev = ref;
    node.next = next;
    next.prev = node;
    if (ref === undefined) this.head = node;
    else ref.next = node;
    this.size++;
  }

  shift(): T | undefined {
    const node = this.head;
    if (node !== undefined) this.remove(node);
    return node;
  }

  /** Callers must only pass nodes of this list; `listed` alone cannot tell which list. */
  remove(node: T): void {
    if (!node.listed) return;
    if (node.prev === undefined) this.head = node.next;
    else node.prev.next = node.next;
    if (node.next === undefined) this.tail = node.prev;
    else node.next.prev = node.prev;
    node.prev = undefined;
    node.next = undefined;
    node.listed = false;
    this.size--;
  }
}
