// A guard against hangs, not a speed bound: on a machine loaded by other work (measured: load
// average 18-23 on 2 cores) an app boot in beforeAll took over 60 s and failed whole suites.
// (jest-circus reads only the global testTimeout, so the e2e projects set theirs here.)
jest.setTimeout(180_000);
