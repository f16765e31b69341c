/**
 * A gate tests hold work behind: `promise` settles only when the test calls `open()`, so "while a batch is running"
 * is a state the test controls, not a race it hopes to win.
 */
export interface Gate {
  promise: Promise<void>;
  open(): void;
}

export function gate(): Gate {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}
