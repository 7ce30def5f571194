{
  description = "nsh: a scheduler build hook for Nix on HPC clusters, and nix-sigstop for busy evaluation hosts";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAllSystems (pkgs: rec {
        nsh = pkgs.callPackage ./nix/package.nix { };
        default = nsh;
      });

      apps = forAllSystems (pkgs: {
        nix-sigstop = { type = "app"; program = "${self.packages.${pkgs.system}.nsh}/bin/nix-sigstop"; };
        default = { type = "app"; program = "${self.packages.${pkgs.system}.nsh}/bin/nsh"; };
      });

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell { packages = [ pkgs.bun pkgs.nodejs pkgs.typescript ]; };
      });
    };
}
