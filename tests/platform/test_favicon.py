"""Browsers ask for /favicon.ico on pages that name no icon."""


def test_it_points_browsers_asking_for_favicon_ico_at_our_icon(client):
    response = client.get("/favicon.ico")

    assert response.status_code == 301
    assert "favicon" in response["Location"] and response["Location"].endswith(".svg")
