// The package ships its own copy of the proto; it must equal the contract.
const fs = require("node:fs");
const path = require("node:path");
const own = path.join(__dirname, "..", "proto", "signet", "v1", "signet.proto");
const contract = path.join(__dirname, "..", "..", "..", "proto", "signet", "v1", "signet.proto");
if (!fs.readFileSync(own).equals(fs.readFileSync(contract))) {
  console.error(`${own} differs from ${contract}: copy it again (cp ${contract} ${own})`);
  process.exit(1);
}
console.log("proto copy matches proto/signet/v1/signet.proto");
