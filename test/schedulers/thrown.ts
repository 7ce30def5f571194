// The SchedulerError a scheduler call must end in (any other outcome fails the test).
import { SchedulerError } from "../../src/schedulers/scheduler.ts";

export async function thrown(p: Promise<unknown>): Promise<SchedulerError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof SchedulerError) return e;
    throw e;
  }
  throw new Error("expected a SchedulerError");
}
