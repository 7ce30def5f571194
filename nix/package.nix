# Builds the same single binary as `npm run build`: node_modules from package-lock.json
# (importNpmLock needs no extra hash), then `bun build --compile` with nixpkgs' Bun, whose own
# executable is the base of the compiled binary, so nothing is downloaded during the build.
# build.ts turns off the executable's autoloading of .env/bunfig.toml from the working directory and fails
# the build if the binary still runs a directory's bunfig.toml preload (a Bun too old for those flags).
{ lib, stdenvNoCC, bun, nodejs, importNpmLock }:

stdenvNoCC.mkDerivation {
  pname = "nsh";
  version = (lib.importJSON ../package.json).version;

  src = lib.fileset.toSource {
    root = ./..;
    # bytecode-order: the profiles build.ts lays the bytecode out by (scripts/bytecode-order.ts)
    fileset = lib.fileset.unions [
      ../package.json ../package-lock.json ../tsconfig.json ../bunfig.toml ../build.ts ../bytecode-order ../src
    ];
  };

  nativeBuildInputs = [ bun nodejs ];

  node_modules = importNpmLock.buildNodeModules {
    npmRoot = ./..;
    inherit nodejs;
    # The npm `bun` package only fetches a platform binary; the build uses nixpkgs' bun instead.
    derivationArgs.npmFlags = [ "--omit=optional" "--ignore-scripts" ];
  };

  buildPhase = ''
    runHook preBuild
    ln -s $node_modules/node_modules node_modules
    bun build.ts
    runHook postBuild
  '';

  installPhase = ''
    runHook preInstall
    install -Dm755 dist/nsh $out/bin/nsh
    ln -s nsh $out/bin/nix-sigstop
    runHook postInstall
  '';

  # Stripping removes the embedded program and leaves plain bun behind (bun.md §3).
  dontStrip = true;
  dontPatchELF = true;

  meta = {
    description = "Nix scheduler build hook and nix-sigstop, one self-contained executable";
    license = lib.licenses.mit;
    mainProgram = "nsh";
    platforms = lib.platforms.linux;
  };
}
