import assert from 'node:assert/strict';
import { IntrusiveList, type ListNode } from '../../../src/admission/intrusive-list';

class Item implements ListNode<Item> {
  prev: Item | undefined = undefined;
  next: Item | undefined = undefined;
  listed = false;
  constructor(readonly id: number) {}
}

function ids(list: IntrusiveList<Item>): number[] {
  const out: number[] = [];
  for (let node = list.head; node !== undefined; node = node.next) out.push(node.id);
  return out;
}

describe('IntrusiveList', () => {
  it('shifts items in the order they were pushed', () => {
    const list = new IntrusiveList<Item>();
    const items = [1, 2, 3].map((id) => new Item(id));
    for (const item of items) list.push(item);
    assert.deepEqual(
      [list.shift()?.id, list.shift()?.id, list.shift()?.id, list.shift()],
      [1, 2, 3, undefined],
    );
    assert.equal(list.size, 0);
    assert.equal(list.tail, undefined);
  });

  it('removes the head, a middle item and the tail while keeping the rest linked', () => {
    const list = new IntrusiveList<Item>();
    const items = [1, 2, 3, 4, 5].map((id) => new Item(id));
    for (const item of items) list.push(item);
    list.remove(items[2]!);
    list.remove(items[0]!);
    list.remove(items[4]!);
    assert.deepEqual(ids(list), [2, 4]);
    assert.equal(list.size, 2);
    assert.equal(list.tail?.id, 4);
    assert.equal(items[2]!.listed, false);
  });

  it('treats removing an unlisted item as a no-op and refuses to list an item twice', () => {
    const list = new IntrusiveList<Item>();
    const item = new Item(1);
    list.remove(item);
    assert.equal(list.size, 0);
    list.push(item);
    assert.throws(() => list.push(item), /already in a list/);
    list.remove(item);
    list.push(item);
    assert.deepEqual(ids(list), [1]);
  });
});
